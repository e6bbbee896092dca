"""Settings of the test session.

The test session is an entry point like ``manage.py``: when DATABASE_URL is unset it
starts the embedded PostgreSQL and points DATABASE_URL at it, before the project's
settings (which only read DATABASE_URL) are imported.
"""

from config.embedded_postgres import use_unless_configured

use_unless_configured()

from config.settings import *  # noqa: E402, F403
