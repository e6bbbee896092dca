#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    from config.embedded_postgres import use_unless_configured

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    use_unless_configured()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
