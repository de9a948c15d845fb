from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Ops dashboard"

    def ready(self) -> None:
        # Fires on directory logins only (django-auth-ldap's backend is enabled by AUTH_LDAP_SERVER_URI).
        from django_auth_ldap.backend import populate_user

        from dashboard.directory import on_populate_user  # AppConfig.ready: models are loaded only now

        populate_user.connect(on_populate_user, dispatch_uid="kafkacache-directory")
