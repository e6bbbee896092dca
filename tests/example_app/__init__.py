"""An example of a team's own tenant data: notes written by tenant users (installed by the tests only)."""
