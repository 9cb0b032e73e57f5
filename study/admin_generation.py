"""Admin pieces for getting images in and running generation (mixed into study.admin classes)."""


class CampaignGenerationMixin:
    pass


class DatasetImportMixin:
    pass


class MethodResultsMixin:
    pass
