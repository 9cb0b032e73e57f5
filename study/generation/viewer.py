"""The researcher's comparison viewer: per source image, the LR input, every method and the HR
side by side at 1:1 pixels (synchronised pan and zoom, a crop selector, blink between two
methods), and the paper's qualitative figure of a crop as PNG or PDF.

Staff only, through the admin (view permission on the campaign); images are read from storage
by these views, never through the raters' URLs or a public /media/.
"""

import io

import numpy as np
from django.core.files.storage import default_storage
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse
from PIL import Image

from sr_models.metric_specs import METRICS
from study.generation.figure import FORMATS, qualitative_figure
from study.generation.inputs import hr_for, lr_input, read_png
from study.models import Candidate, Method, SourceImage
from study.models.campaign import get_campaign_for


def method_order(method):
    """Methods appear as the paper lays them out, as in the report: interpolation, networks,
    imported results, HR."""
    return method.paper_order_key()


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    response = HttpResponse(buffer.getvalue(), content_type="image/png")
    response["Cache-Control"] = "private, max-age=600"
    return response


def _rated_images(campaign):
    return SourceImage.objects.filter(
        candidates__campaign=campaign, candidates__role=Candidate.RATING
    ).distinct()


def _panels(campaign, image):
    """The viewer's columns for one source image: LR, each method in paper order (HR last)."""
    candidates = {
        c.method_id: c
        for c in campaign.candidates.filter(image=image, role=Candidate.RATING).select_related(
            "method"
        )
    }
    lr_url = reverse("admin:study_campaign_viewer_lr", args=[campaign.pk, image.pk])
    panels = [{"key": "lr", "label": f"LR input (x{campaign.scale})", "src": lr_url, "lr": True}]
    for method in sorted(campaign.methods.all(), key=method_order):
        candidate = candidates.get(method.pk)
        done = candidate is not None and candidate.status == Candidate.DONE and candidate.file
        status = candidate.get_status_display().lower() if candidate else "not planned"
        if done and not default_storage.exists(candidate.file.name):
            done, status = False, "file missing from storage: retry its generation"
        panels.append(
            {
                "key": method.slug,
                "label": method.name or method.slug,
                "src": reverse(
                    "admin:study_campaign_viewer_image", args=[campaign.pk, candidate.pk]
                )
                if done
                else "",
                "status": status,
                "psnr": candidate.psnr if done else None,
                "ssim": candidate.ssim if done else None,
                "metrics": metric_captions(campaign, candidate) if done else [],
                "reference": method.kind == Method.REFERENCE,
            }
        )
    return panels


def metric_captions(campaign, candidate):
    """The campaign's other metrics of a candidate as (label, value rounded to 4 decimals, or
    why it is missing), in the campaign's order."""
    out = []
    for name in campaign.metrics:
        spec = METRICS.get(name)
        label = spec.label if spec else name
        if name in candidate.metrics:
            out.append((label, f"{candidate.metrics[name]:.4f}", ""))
        else:
            out.append((label, "-", candidate.metric_notes.get(name, "not computed yet")))
    return out


def _crop_box(request, height, width):
    """(x, y, w, h) from the query, inside the image, or ValueError saying what is wrong."""
    try:
        x, y, w, h = (int(request.GET[k]) for k in ("x", "y", "w", "h"))
    except (KeyError, ValueError):
        raise ValueError("give the crop as whole numbers x, y, w and h (HR pixels)") from None
    if w < 4 or h < 4 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise ValueError(
            f"the crop {w}x{h} at ({x}, {y}) does not lie inside the {width}x{height} image"
        )
    return x, y, w, h


class CampaignViewerMixin:
    """The viewer's pages for CampaignAdmin."""

    def get_urls(self):
        view = self.admin_site.admin_view
        urls = [
            path("<int:pk>/viewer/", view(self.viewer_view), name="study_campaign_viewer"),
            path(
                "<int:pk>/viewer/candidate/<int:candidate_pk>.png",
                view(self.viewer_image),
                name="study_campaign_viewer_image",
            ),
            path(
                "<int:pk>/viewer/lr/<int:image_pk>.png",
                view(self.viewer_lr),
                name="study_campaign_viewer_lr",
            ),
            path(
                "<int:pk>/viewer/figure.<str:fmt>",
                view(self.viewer_figure),
                name="study_campaign_viewer_figure",
            ),
        ]
        return urls + super().get_urls()

    def viewer_view(self, request, pk):
        campaign = get_campaign_for(request, pk)
        images = list(_rated_images(campaign).select_related("dataset"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "campaign": campaign,
            "title": f"Compare candidates: {campaign}",
            "images": images,
        }
        if not images:
            context["error"] = (
                "This campaign has no candidates yet: generate them first (the Generate button "
                "on the campaign page)."
            )
            return TemplateResponse(request, "admin/study/campaign/viewer.html", context)
        chosen = request.GET.get("image")
        image = next((i for i in images if str(i.pk) == chosen), images[0])
        context.update(
            image=image,
            panels=_panels(campaign, image),
            scale=campaign.scale,
            hr_width=image.width - image.width % campaign.scale,
            hr_height=image.height - image.height % campaign.scale,
        )
        return TemplateResponse(request, "admin/study/campaign/viewer.html", context)

    def viewer_image(self, request, pk, candidate_pk):
        campaign = get_campaign_for(request, pk)
        candidate = campaign.candidates.filter(pk=candidate_pk, status=Candidate.DONE).first()
        if candidate is None or not candidate.file:
            raise Http404("No such candidate image in this campaign.")
        try:
            with default_storage.open(candidate.file.name, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            raise Http404(
                f"The image file of {candidate} is missing from storage: retry its generation."
            ) from None
        response = HttpResponse(data, content_type="image/png")
        response["Cache-Control"] = "private, max-age=600"
        return response

    def viewer_lr(self, request, pk, image_pk):
        campaign = get_campaign_for(request, pk)
        image = _rated_images(campaign).filter(pk=image_pk).first()
        if image is None:
            raise Http404("No such source image in this campaign.")
        try:
            hr, _ = hr_for(image, campaign.scale)
            return _png(lr_input(campaign, image, hr))
        except (FileNotFoundError, ValueError) as exc:
            raise Http404(f"The LR input of {image} cannot be shown: {exc}") from None

    def viewer_figure(self, request, pk, fmt):
        campaign = get_campaign_for(request, pk)
        if fmt not in FORMATS:
            raise Http404("The figure comes as .png or .pdf.")
        image = _rated_images(campaign).filter(pk=request.GET.get("image") or 0).first()
        if image is None:
            return HttpResponseBadRequest("Choose a source image of this campaign.")
        try:
            panels = self._figure_panels(request, campaign, image)
            data = qualitative_figure(panels, fmt=fmt)
        except ValueError as exc:
            return HttpResponseBadRequest(f"No figure: {exc}.", content_type="text/plain")
        response = HttpResponse(data, content_type=FORMATS[fmt])
        name = f"{campaign.name}-{image.name}-figure.{fmt}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def _figure_panels(self, request, campaign, image):
        """(label, crop, caption) per chosen column: "lr" and method slugs, in the given order."""
        keys = [k for k in request.GET.get("methods", "").split(",") if k]
        if not keys:
            raise ValueError("choose at least one method for the figure")
        hr, _ = hr_for(image, campaign.scale)
        x, y, w, h = _crop_box(request, *hr.shape[:2])
        candidates = {
            c.method.slug: c
            for c in campaign.candidates.filter(
                image=image, role=Candidate.RATING, status=Candidate.DONE
            ).select_related("method")
        }
        panels = []
        for key in keys:
            if key == "lr":
                up = np.repeat(
                    np.repeat(lr_input(campaign, image, hr), campaign.scale, 0), campaign.scale, 1
                )
                panels.append(("LR input", up[y : y + h, x : x + w], f"x{campaign.scale}"))
                continue
            candidate = candidates.get(key)
            if candidate is None:
                raise ValueError(f"{key} has no finished candidate for {image.name}")
            sr = read_png(candidate.file.name)
            caption = (
                "reference"
                if candidate.method.kind == Method.REFERENCE
                else f"{candidate.psnr:.2f} dB / {candidate.ssim:.4f}"
            )
            panels.append((candidate.method.name or key, sr[y : y + h, x : x + w], caption))
        return panels
