"""Request bodies are bounded before anything reads them: 413, and no byte of an upload handed
to an upload handler (which would write it to the temporary directory)."""

import io
import os

import pytest
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse
from django.utils.module_loading import import_string

from tests.conftest import get_ready, png_bytes, run_python, sample_image, zip_upload

pytestmark = pytest.mark.django_db

HANDLER = "tests.test_limits.RecordingUploadHandler"
# Django imports the handler by its dotted name, which pytest's own import of this file does not
# share: the list is the one on the class Django loads.
RECEIVED = import_string(HANDLER).received if __name__ != "tests.test_limits" else []


class RecordingUploadHandler(TemporaryFileUploadHandler):
    """Django's own handler for file parts on disk, noting each chunk it is given."""

    received = RECEIVED

    def receive_data_chunk(self, raw_data, start):
        self.received.append(len(raw_data))
        return super().receive_data_chunk(raw_data, start)


@pytest.fixture(autouse=True)
def upload_spy(settings, tmp_path):
    RECEIVED.clear()
    settings.FILE_UPLOAD_HANDLERS = [HANDLER]
    settings.FILE_UPLOAD_TEMP_DIR = tmp_path / "uploads"
    settings.FILE_UPLOAD_TEMP_DIR.mkdir()
    return settings.FILE_UPLOAD_TEMP_DIR


def file_part(size, **fields):
    """A multipart body with one file part of `size` bytes."""
    upload = zip_upload({}, name="big.bin")
    upload.write(b"\0" * size)
    upload.seek(0)
    return encode_multipart(BOUNDARY, {**fields, "archive": upload})


def assert_refused(response, upload_spy):
    assert response.status_code == 413
    assert b"Request body too large" in response.content
    assert RECEIVED == [] and list(upload_spy.iterdir()) == []


def test_an_anonymous_upload_over_the_limit_to_the_login_page_is_refused_unread(
    client, settings, upload_spy
):
    body = file_part(settings.SRMOS_MAX_REQUEST_BYTES + 1, username="a", password="b")
    response = client.generic("POST", reverse("admin:login"), body, MULTIPART_CONTENT)
    assert_refused(response, upload_spy)


def test_a_lying_content_length_of_300_mb_is_refused_before_the_body_is_read(client, upload_spy):
    response = client.generic(
        "POST",
        reverse("admin:login"),
        file_part(1000),
        MULTIPART_CONTENT,
        CONTENT_LENGTH=str(300 * 2**20),
    )
    assert_refused(response, upload_spy)


def test_an_upload_over_the_limit_to_a_vote_is_refused_unread(
    client, settings, live_campaign, upload_spy
):
    rater = live_campaign.raters.first()
    get_ready(client, rater)
    body = file_part(settings.SRMOS_MAX_REQUEST_BYTES + 1, position=1, score=3)
    response = client.generic("POST", f"/r/{rater.token}/vote/", body, MULTIPART_CONTENT)
    assert_refused(response, upload_spy)
    assert not rater.trials.filter(score__isnull=False).exists()


def test_a_chunked_body_without_length_is_counted_and_refused_past_the_limit(
    client, settings, upload_spy
):
    body = file_part(settings.SRMOS_MAX_REQUEST_BYTES + 1)
    response = client.generic(
        "POST",
        reverse("admin:login"),
        CONTENT_TYPE=MULTIPART_CONTENT,
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(body)},
    )
    assert_refused(response, upload_spy)


def test_a_short_chunked_body_reaches_the_view(client, researcher):
    body = b"username=researcher&password=pw-researcher-1"
    response = client.generic(
        "POST",
        reverse("admin:login"),
        CONTENT_TYPE="application/x-www-form-urlencoded",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(body)},
    )
    assert response.status_code == 302  # logged in: Django alone would have read no fields


def dataset_zip():
    return zip_upload({f"img{i}.png": png_bytes(sample_image(i)) for i in range(3)}, "set.zip")


def post_dataset(client):
    return client.post(
        reverse("admin:study_dataset_import_zip"), {"name": "big", "archive": dataset_zip()}
    )


def test_staff_may_upload_a_zip_over_the_small_limit_on_admin_pages_only(
    client, settings, researcher, django_user_model, upload_spy
):
    settings.SRMOS_MAX_REQUEST_BYTES = 1000
    assert_refused(post_dataset(client), upload_spy)  # anonymous

    plain = django_user_model.objects.create_user("plain", password="pw")
    client.force_login(plain)
    assert_refused(post_dataset(client), upload_spy)  # signed in, not staff

    client.force_login(researcher)
    rater_page = client.generic("POST", "/r/whatever/vote/", file_part(2000), MULTIPART_CONTENT)
    assert_refused(rater_page, upload_spy)  # staff, but not an admin page
    response = post_dataset(client)
    assert response.status_code == 302, response.url
    assert sum(RECEIVED) > 1000

    settings.SRMOS_MAX_UPLOAD_BYTES = 2000
    RECEIVED.clear()
    assert_refused(post_dataset(client), upload_spy)


def test_a_limit_below_one_stops_start_up_with_its_name(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(SRMOS_DATA_DIR=str(tmp_path), SRMOS_MAX_REQUEST_MB="0")
    result = run_python("manage.py", "check", env=env)
    assert result.returncode != 0
    assert "SRMOS_MAX_REQUEST_MB=0 must be at least 1" in result.stderr
