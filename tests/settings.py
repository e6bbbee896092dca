"""Settings of the test suite: the project's, plus the example tenant app (tests/example_app).

The example app stands for a team's own tenant data; only the tests install it, so
production schemas never get its tables.
"""

from config.settings import *  # noqa: F403
from config.settings import SHARED_APPS, TENANT_APPS

TENANT_APPS = [*TENANT_APPS, "tests.example_app"]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]
