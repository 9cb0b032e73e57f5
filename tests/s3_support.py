"""A real S3-compatible server for the tests: moto in server mode, started as its own process on a
local port, with a bucket, and the environment that points an srmos process at it.

Outside CI a test that needs it skips when moto is not installed (`pip install -r
requirements-dev.txt`); under CI it fails instead, like PostgreSQL, Redis and Chromium.
"""

import importlib.util
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import ROOT, require

# The ports this test suite may open for its servers (see docs/deployment.md for real ones).
PORTS = range(18700, 18800)
KEY_ID = "srmos-test-key"
SECRET = "srmos-test-secret"  # moto accepts any credentials; these only have to be consistent


def free_port(ports=PORTS):
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


class S3Server:
    """`python -m moto.server` on 127.0.0.1:`port`, one bucket created."""

    def __init__(self, log_path, bucket="srmos-test", port=None):
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.bucket = bucket
        self.log = log_path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            cwd=ROOT,
            stdout=log_path.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto did not start:\n{log_path.read_text()}") from None
                time.sleep(0.1)
        self.client().create_bucket(Bucket=bucket)

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        )

    def env(self):
        """What a web or worker process needs to use the bucket as its storage."""
        return {
            "SRMOS_S3_BUCKET": self.bucket,
            "SRMOS_S3_ENDPOINT_URL": self.endpoint,
            "SRMOS_S3_ACCESS_KEY_ID": KEY_ID,
            "SRMOS_S3_SECRET_ACCESS_KEY": SECRET,
        }

    def storages(self):
        """STORAGES for this (already configured) test process, as config.settings builds it
        from env()."""
        return {
            "default": {
                "BACKEND": "study.storage_s3.S3Storage",
                "OPTIONS": {
                    "bucket_name": self.bucket,
                    "endpoint_url": self.endpoint,
                    "region_name": "us-east-1",
                    "access_key": KEY_ID,
                    "secret_key": SECRET,
                    "addressing_style": "path",
                    "signature_version": "s3v4",
                    "default_acl": None,
                    "querystring_expire": 60,
                    "file_overwrite": False,
                    "max_memory_size": 32 * 2**20,
                },
            },
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }

    def keys(self, prefix=""):
        """Every key in the bucket under `prefix`, sorted."""
        pages = self.client().get_paginator("list_objects_v2")
        return sorted(
            item["Key"]
            for page in pages.paginate(Bucket=self.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        )

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def moto_installed():
    return importlib.util.find_spec("moto") is not None


@pytest.fixture
def s3_server(tmp_path):
    require(moto_installed(), "moto is not installed (pip install -r requirements-dev.txt)")
    server = S3Server(tmp_path / "moto.log")
    yield server
    server.stop()


@pytest.fixture
def s3_storage(s3_server, settings):
    """This test process's default storage is the bucket (Django resets default_storage)."""
    settings.STORAGES = s3_server.storages()
    return s3_server
