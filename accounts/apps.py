from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Tenant accounts"

    def ready(self) -> None:
        from accounts.keys import follow_revocations
        from accounts.tokens import follow_changes

        # Before the first request starts the registry listener, which then also LISTENs for
        # changes of keys, tokens and users.
        follow_revocations()
        follow_changes()
