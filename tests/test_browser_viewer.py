"""The comparison viewer as a researcher uses it, in headless Chromium."""

import pytest

from tests.conftest import admin_login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.slow]


def transform(page, key):
    return page.evaluate(
        "k => document.querySelector(`.panel[data-key='${k}'] img`).style.transform", key
    )


def test_a_researcher_compares_pans_zooms_blinks_and_exports_a_figure(
    live_campaign, researcher, live_server, page
):
    base = live_server.url
    admin_login(page, base)
    page.goto(f"{base}/admin/study/campaign/{live_campaign.pk}/change/")
    page.click("text=Compare candidates")
    page.wait_for_function("() => document.body.dataset.allLoaded === 'yes'")
    assert page.evaluate("() => document.body.dataset.panels") == "4"  # LR, nearest, bicubic, HR
    # One image pixel per device pixel at 1x: an HR image's CSS size times the pixel ratio.
    natural, shown = page.evaluate(
        "() => { const i = document.querySelector(\".panel[data-key='hr'] img\");"
        " return [i.naturalWidth, i.getBoundingClientRect().width * devicePixelRatio]; }"
    )
    assert shown == pytest.approx(natural)
    # The campaign's metrics beside PSNR/SSIM, rounded; a missing one says why on hover.
    caption = page.inner_text(".panel[data-key='bicubic'] figcaption.metrics")
    assert " dB / " in caption and "GMSD 0." in caption and "HaarPSI 0." in caption
    # Zoom and pan move every panel together, the LR input included.
    page.keyboard.press("+")
    assert page.inner_text("#zoom-level") == "2x"
    port = page.locator(".panel[data-key='bicubic'] .port")
    box = port.bounding_box()
    page.mouse.move(box["x"] + 100, box["y"] + 100)
    page.mouse.down()
    page.mouse.move(box["x"] + 60, box["y"] + 70)
    page.mouse.up()
    assert transform(page, "bicubic") == transform(page, "hr") != ""
    assert transform(page, "lr").startswith(transform(page, "hr").split(" scale")[0])
    # Shift+drag selects the crop, shown on every panel and in the figure form.
    page.keyboard.down("Shift")
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + 80, box["y"] + 60)
    page.mouse.up()
    page.keyboard.up("Shift")
    w, h = int(page.input_value("#crop-w")), int(page.input_value("#crop-h"))
    assert w >= 20 and h >= 10
    # Blink flips between two methods on a key.
    first = page.evaluate("() => document.body.dataset.blink")
    page.keyboard.press("b")
    second = page.evaluate("() => document.body.dataset.blink")
    page.keyboard.press("b")
    assert first != second and page.evaluate("() => document.body.dataset.blink") == first
    screenshot(page, "viewer")
    # The figure, as PNG and PDF downloads.
    for button, magic in (("#figure-png", b"\x89PNG"), ("#figure-pdf", b"%PDF")):
        with page.expect_download() as download:
            page.click(button)
        path = download.value.path()
        assert open(path, "rb").read(4) == magic
