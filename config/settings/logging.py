"""Logging: one line per request (saas.request), outages without tracebacks."""

from config.env import env_str

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"skip_database_unavailable": {"()": "core.outage.SkipDatabaseUnavailable"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        # An outage is logged once per request by the 503 path (saas.db), without a traceback.
        "django.request": {"filters": ["skip_database_unavailable"]},
        "saas.request": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO"), "propagate": False},
        "django.server": {"handlers": [], "propagate": False},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
}
