"""Settings of the server that the browser tests start: the test suite's, with its hasher.

The test session seeds the demo users with the fast hasher (see conftest.py); the
server has to know it to check their passwords.
"""

from tests.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
