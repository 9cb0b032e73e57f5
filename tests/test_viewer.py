"""The researcher's comparison viewer and the qualitative figure (issue 12, "See the candidates")."""

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from study.models import Candidate

pytestmark = pytest.mark.django_db


def viewer_url(campaign, **query):
    url = reverse("admin:study_campaign_viewer", args=[campaign.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def figure_url(campaign, fmt, **query):
    url = reverse("admin:study_campaign_viewer_figure", args=[campaign.pk, fmt])
    return url + "?" + "&".join(f"{k}={v}" for k, v in query.items())


def test_an_outsider_cannot_see_the_viewer_or_its_images(live_campaign, client, django_user_model):
    candidate = live_campaign.candidates.first()
    image_url = reverse("admin:study_campaign_viewer_image", args=[live_campaign.pk, candidate.pk])
    for url in (viewer_url(live_campaign), image_url):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    django_user_model.objects.create_user("rater", password="pw-rater-1")
    client.login(username="rater", password="pw-rater-1")
    assert client.get(image_url).status_code == 302  # not staff: the admin's login again


def test_the_viewer_shows_lr_every_method_and_hr_in_the_papers_order(
    live_campaign, client, researcher
):
    client.force_login(researcher)
    response = client.get(viewer_url(live_campaign))
    html = response.content.decode()
    assert response.status_code == 200
    keys = [p["key"] for p in response.context["panels"]]
    assert keys == ["lr", "nearest", "bicubic", "hr"]
    bicubic = live_campaign.candidates.get(method__slug="bicubic", image=response.context["image"])
    assert f"{bicubic.psnr:.2f} dB / {bicubic.ssim:.4f}" in html
    assert str(bicubic.psnr) not in html  # rounded, not 21.143342042362153


def test_its_images_are_the_candidates_and_the_lr_input(live_campaign, client, researcher):
    client.force_login(researcher)
    candidate = live_campaign.candidates.filter(method__slug="bicubic").first()
    url = reverse("admin:study_campaign_viewer_image", args=[live_campaign.pk, candidate.pk])
    served = np.asarray(Image.open(io.BytesIO(client.get(url).content)))
    with default_storage.open(candidate.file.name, "rb") as fh:
        assert np.array_equal(served, np.asarray(Image.open(fh)))
    lr = client.get(
        reverse("admin:study_campaign_viewer_lr", args=[live_campaign.pk, candidate.image_id])
    )
    assert lr["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(lr.content)).size == (candidate.width // 4, candidate.height // 4)


def test_another_campaigns_candidate_is_not_served_here(
    live_campaign, make_campaign, client, researcher
):
    client.force_login(researcher)
    other = make_campaign(name="other")
    url = reverse(
        "admin:study_campaign_viewer_image",
        args=[other.pk, live_campaign.candidates.first().pk],
    )
    assert client.get(url).status_code == 404


def test_a_candidate_file_gone_from_storage_gets_a_clear_404(live_campaign, client, researcher):
    client.force_login(researcher)
    candidate = live_campaign.candidates.first()
    default_storage.delete(candidate.file.name)
    url = reverse("admin:study_campaign_viewer_image", args=[live_campaign.pk, candidate.pk])
    assert client.get(url).status_code == 404
    page = client.get(viewer_url(live_campaign, image=candidate.image_id)).content.decode()
    assert "file missing from storage: retry its generation" in page


def test_an_empty_campaign_says_what_to_do(make_campaign, client, researcher):
    client.force_login(researcher)
    html = client.get(viewer_url(make_campaign(name="empty"))).content.decode()
    assert "no candidates yet: generate them first" in html


@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_the_figure_crops_a_region_across_methods(live_campaign, client, researcher, fmt, magic):
    client.force_login(researcher)
    image = live_campaign.candidates.filter(role=Candidate.RATING).first().image
    response = client.get(
        figure_url(
            live_campaign,
            fmt,
            image=image.pk,
            x=4,
            y=4,
            w=24,
            h=20,
            methods="lr,nearest,bicubic,hr",
        )
    )
    assert response.status_code == 200, response.content
    assert response.content.startswith(magic)
    assert f"{image.name}-figure.{fmt}" in response["Content-Disposition"]


def test_a_bad_figure_request_says_why(live_campaign, client, researcher):
    client.force_login(researcher)
    image = live_campaign.candidates.first().image
    outside = client.get(
        figure_url(live_campaign, "png", image=image.pk, x=0, y=0, w=5000, h=20, methods="hr")
    )
    assert outside.status_code == 400 and "does not lie inside" in outside.content.decode()
    none = client.get(figure_url(live_campaign, "png", image=image.pk, x=0, y=0, w=8, h=8))
    assert none.status_code == 400 and "at least one method" in none.content.decode()
    unknown = client.get(
        figure_url(live_campaign, "png", image=image.pk, x=0, y=0, w=8, h=8, methods="srgan")
    )
    assert (
        unknown.status_code == 400 and "srgan has no finished candidate" in unknown.content.decode()
    )
