"""The media storage on S3-compatible object storage: django-storages' S3Storage, selected by
``SRMOS_S3_BUCKET`` (config/settings.py, docs/deployment.md), with one addition.

`read_bytes` reads a whole small file in one GET. ``open().read()`` costs three requests (the
file object loads the object's head, then the download asks for it again before the GET); the
rater's images are read once per response, so the web server takes the short way
(study.rating.images; bench/bench_storage.py measures both storages).
"""

from botocore.exceptions import ClientError
from storages.backends.s3 import S3Storage as BaseS3Storage
from storages.utils import clean_name


class S3Storage(BaseS3Storage):
    def read_bytes(self, name):
        """The file's content; FileNotFoundError when there is none."""
        key = self._normalize_name(clean_name(name))
        try:
            return self.bucket.Object(key).get()["Body"].read()
        except ClientError as err:
            if err.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                raise FileNotFoundError(f"File does not exist: {name}") from None
            raise
