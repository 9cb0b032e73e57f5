from django.apps import AppConfig


class StudyConfig(AppConfig):
    name = "study"
    verbose_name = "MOS studies"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Campaigns reach their protocol through the registry in study.models.protocol; the
        # protocols register themselves when their package is imported.
        import study.protocols  # noqa: F401
