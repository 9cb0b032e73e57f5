from django.apps import AppConfig
from django.conf import settings
from PIL import Image


class StudyConfig(AppConfig):
    name = "study"
    verbose_name = "MOS studies"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Campaigns reach their protocol through the registry in study.models.protocol; the
        # protocols register themselves when their package is imported.
        import study.protocols  # noqa: F401

        # Every image this process opens (imports, generation inputs) is bounded the same way;
        # the import refuses Pillow's warning band too (study.datasets.importing).
        Image.MAX_IMAGE_PIXELS = settings.SRMOS_MAX_IMAGE_PIXELS
