import os

from django.core.wsgi import get_wsgi_application

from config.embedded_postgres import use_unless_configured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
use_unless_configured()
application = get_wsgi_application()
