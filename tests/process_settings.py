"""Settings of the processes the tests start (servers, job workers): the project's, as the test session has them.

The test session seeds the demo users with the fast hasher (see conftest.py): a server has to know
it to check their passwords. Workers also load the tests' own job kind (tests/job_tasks.py).
"""

from tests.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
PROCRASTINATE_IMPORT_PATHS = ["tests.job_tasks"]
