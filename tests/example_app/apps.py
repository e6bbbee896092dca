from django.apps import AppConfig


class NotesConfig(AppConfig):
    name = "tests.example_app"
    # The label names the tables (notes_note) and the migrations ("notes", "0001_initial").
    label = "notes"
    default_auto_field = "django.db.models.BigAutoField"
