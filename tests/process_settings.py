"""Settings of the processes the tests start (job workers, servers): the project's, plus the tests' own job kind."""

from tests.settings import *  # noqa: F403

PROCRASTINATE_IMPORT_PATHS = ["tests.job_tasks"]
# Real hashing costs 0.3 s per password; the tests check behaviour, not the hasher (as in conftest).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
