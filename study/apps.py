from django.apps import AppConfig


class StudyConfig(AppConfig):
    name = "study"
    verbose_name = "MOS studies"
    default_auto_field = "django.db.models.BigAutoField"
