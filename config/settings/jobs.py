"""Background jobs (procrastinate, queued in PostgreSQL) and the archives they write and read."""

from pathlib import Path

from config.env import env_int, env_str
from config.settings.apps import BASE_DIR

# A job whose worker has sent no heartbeat for this long is taken as abandoned (the worker was
# killed or lost its machine) and is retried, or failed once its retries are spent.
JOB_STALLED_SECONDS = env_int("JOB_STALLED_SECONDS", 30)
# Further runs of a job after a failure that may pass (lost database connection, killed worker).
JOB_RETRIES = env_int("JOB_RETRIES", 2)

PROCRASTINATE_WORKER_DEFAULTS = {
    "concurrency": env_int("JOB_WORKER_CONCURRENCY", 2),
    "update_heartbeat_interval": max(JOB_STALLED_SECONDS / 4, 0.2),
    "stalled_worker_timeout": JOB_STALLED_SECONDS,
    # Our own Job rows keep the history; the queue keeps only what is still to do or went wrong.
    "delete_jobs": "successful",
}
# Our tasks modules are named ``tasks`` (procrastinate's default), one per app that defines jobs.
PROCRASTINATE_AUTODISCOVER_MODULE_NAME = "tasks"

# Where export archives and uploaded imports are kept (Django storage "archives"). Workers on other
# machines need the same storage: a shared file system here, or another storage backend.
ARCHIVE_ROOT = Path(env_str("ARCHIVE_ROOT") or BASE_DIR / "var" / "archives")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "archives": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": ARCHIVE_ROOT, "file_permissions_mode": 0o600, "directory_permissions_mode": 0o700},
    },
}
# An uploaded tenant archive larger than this is refused (413), and so is one that unpacks to more.
TENANT_ARCHIVE_MAX_BYTES = env_int("TENANT_ARCHIVE_MAX_BYTES", 512 * 1024 * 1024)
TENANT_ARCHIVE_MAX_UNPACKED_BYTES = env_int("TENANT_ARCHIVE_MAX_UNPACKED_BYTES", 4 * 1024 * 1024 * 1024)
# The import route takes the archive (and a little multipart framing) in its body.
UPLOAD_BODY_LIMITS = {"/admin/tenants/import": TENANT_ARCHIVE_MAX_BYTES + 64 * 1024}
