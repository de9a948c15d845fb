from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Ops dashboard"

    def ready(self) -> None:
        # Fires on directory logins only (the directory backend is enabled by AUTH_LDAP_SERVER_URI).
        from django_auth_ldap.backend import populate_user

        from dashboard.directory import on_populate_user  # AppConfig.ready: models are loaded only now
        from dashboard.logins import token_check_connect, usernames_normalise_connect  # AppConfig.ready, as above

        populate_user.connect(on_populate_user, dispatch_uid="kafkacache-directory")
        usernames_normalise_connect()  # every stored username in its one spelling
        token_check_connect()  # an API token of an account the directory lost is refused
