"""Settings of the test session: the project's, plus the example tenant app (tests/example_app).

The test session is an entry point like ``manage.py``: when DATABASE_URL is unset it
starts the embedded PostgreSQL and points DATABASE_URL at it, before the project's
settings (which only read DATABASE_URL) are imported.

The example app stands for a team's own tenant data; only the tests install it, so
production schemas never get its tables.
"""

from config.embedded_postgres import use_unless_configured

use_unless_configured()

from config.settings import *  # noqa: E402, F403
from config.settings import SHARED_APPS, TENANT_APPS  # noqa: E402

TENANT_APPS = [*TENANT_APPS, "tests.example_app"]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]
