from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Tenant accounts"

    def ready(self) -> None:
        from accounts.keys import follow_revocations

        # Before the first request starts the registry listener, which then also LISTENs for key changes.
        follow_revocations()
