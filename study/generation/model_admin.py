"""Registering a researcher's own network from the admin: an upload form (staff with the
``study.register_model`` permission only), then the registration's page, which follows the
worker's check until the method exists or the refusal says why."""

import json
from collections import Counter

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html

from study.generation import registering
from study.generation.progress import duration
from study.models.networks import MODEL_SUFFIXES, ModelRegistration, store_model_file

PERMISSION = "study.register_model"


class RegisterModelForm(forms.ModelForm):
    model_file = forms.FileField(
        help_text=f"The weights or program ({', '.join(MODEL_SUFFIXES)}). Loading it runs code "
        "on the workers: register only files you trust (docs/models.md)."
    )
    kwargs = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text='Own class: a JSON object of its arguments, e.g. {"scale": 4, "blocks": 8}.',
    )

    class Meta:
        model = ModelRegistration
        fields = [
            "slug",
            "name",
            "description",
            "route",
            "class_path",
            "kwargs",
            "input_range",
            "output_range",
            "channels",
            "scale",
            "half_requested",
        ]
        labels = {
            "slug": "Method name",
            "name": "Display title",
            "half_requested": "Half precision",
        }
        help_texts = {
            "slug": "Short and without spaces, e.g. srgan-mine: the method's name in every "
            "table, figure, export and command. It cannot change later.",
            "name": "Optional longer title for the pages, e.g. SRGAN (own training, epoch 4). "
            "Empty: the method name is shown.",
        }

    def clean_kwargs(self):
        raw = (self.cleaned_data.get("kwargs") or "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"not JSON: {exc.msg} at character {exc.pos}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError('a JSON object is needed, e.g. {"scale": 4}')
        return value

    def clean(self):
        data = super().clean()
        try:
            registering.check_request(
                data.get("slug"), data.get("route"), data.get("class_path", "")
            )
        except registering.RegistrationRefused as exc:
            raise forms.ValidationError(str(exc)) from None
        return data


@admin.register(ModelRegistration)
class ModelRegistrationAdmin(admin.ModelAdmin):
    list_display = ["slug", "status", "architecture", "scale", "parameters", "hash", "created_at"]
    list_filter = ["status"]
    actions = ["check_again"]
    readonly_fields = [
        "status",
        "verdict",
        "method_link",
        "sha256",
        "file_size",
        "original_name",
        "architecture",
        "detected_route",
        "scale",
        "parameters",
        "half",
        "peak_memory",
        "validation_time",
        "attempts",
        "created_by",
        "created_at",
        "finished_at",
    ]

    class Media:
        js = ["study/follow.js"]

    def has_add_permission(self, request):
        return request.user.has_perm(PERMISSION)

    def get_urls(self):
        status = path(
            "<int:pk>/status/",
            self.admin_site.admin_view(self.status_view),
            name="study_modelregistration_status",
        )
        return [status, *super().get_urls()]

    def status_view(self, request, pk):
        """The registration page's poll (static/study/follow.js): where the check is, then a
        reload once the verdict is in (the page then shows what the worker found)."""
        registration = self.get_object(request, str(pk))
        if registration is None:
            raise Http404("No such registration.")
        if not self.has_view_permission(request, registration):
            raise PermissionDenied
        return JsonResponse(
            {
                "settled": registration.settled,
                "reload": True,
                "text": {
                    ".field-status .readonly": registration.get_status_display(),
                    ".field-attempts .readonly": str(registration.attempts),
                    "#model-waiting": _waiting_text(registration),
                },
            }
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and not obj.settled:
            context["follow_url"] = reverse("admin:study_modelregistration_status", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description="Check again (no worker took it, or its worker died)")
    def check_again(self, request, queryset):
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        found = Counter(registering.check_again(r) for r in queryset)
        said = {
            registering.QUEUED_AGAIN: "queued again for a worker's check",
            registering.BEING_CHECKED: "being checked by a live worker (its heartbeat is "
            f"recent; if it died, it is taken over within {settings.SRMOS_GENERATION_LEASE} s)",
            registering.SETTLED: "settled already (registered or refused)",
        }
        self.message_user(
            request,
            "; ".join(f"{n} registration(s) {said[state]}" for state, n in found.items()) + ".",
        )

    def has_view_permission(self, request, obj=None):
        # Whoever may register a model may follow its check and read the verdict.
        return request.user.has_perm(PERMISSION) or super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return False  # a registration is a record; register again to change anything

    def has_delete_permission(self, request, obj=None):
        # A refused or abandoned registration may go; a registered model stays with its method.
        return request.user.has_perm(PERMISSION) and (obj is None or obj.method_id is None)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = RegisterModelForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["model_file", *RegisterModelForm.Meta.fields]
        return ["slug", "name", "description", "route", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return (
            [] if obj is None else ["slug", "name", "description", "route", *self.readonly_fields]
        )

    def save_model(self, request, obj, form, change):
        upload = form.cleaned_data["model_file"]
        path, sha, size = store_model_file(upload, upload.name)
        obj.file, obj.sha256, obj.size, obj.original_name = path, sha, size, upload.name
        obj.created_by = request.user
        obj.save()
        transaction.on_commit(lambda: registering.queue_check(obj.pk))

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(
            request,
            f"Model file {obj.original_name} is stored; a worker is checking it (this page "
            "follows the check).",
        )
        return HttpResponseRedirect(reverse("admin:study_modelregistration_change", args=[obj.pk]))

    @admin.display(description="verdict")
    def verdict(self, obj):
        if obj.status == obj.REFUSED:
            return format_html('<span class="errornote" id="model-refusal">{}</span>', obj.error)
        if obj.status == obj.VALID:
            text, element = "Registered: the method can be added to campaigns.", "model-registered"
        else:
            text, element = _waiting_text(obj), "model-waiting"
        return format_html('<span id="{}">{}</span>', element, text)

    @admin.display(description="method")
    def method_link(self, obj):
        if obj.method_id is None:
            return "-"
        url = reverse("admin:study_method_change", args=[obj.method_id])
        return format_html('<a href="{}">{}</a>', url, obj.method.slug)

    @admin.display(description="parameters")
    def parameters(self, obj):
        return "-" if obj.parameter_count is None else f"{obj.parameter_count:,}"

    @admin.display(description="peak memory")
    def peak_memory(self, obj):
        return "-" if obj.peak_memory_mb is None else f"{obj.peak_memory_mb:,.0f} MB"

    @admin.display(description="validation time")
    def validation_time(self, obj):
        return duration(obj.validation_seconds)

    @admin.display(description="size")
    def file_size(self, obj):
        return _bytes_text(obj.size)

    @admin.display(description="sha256")
    def hash(self, obj):
        return obj.sha256[:12]

    @admin.display(description="half precision")
    def half(self, obj):
        if not obj.half_requested:
            return "not requested"
        verdict = {True: "on", False: "off", None: "not checked"}[obj.half_ok]
        return f"{verdict}. {obj.half_note}".strip()


def _bytes_text(size):
    if size < 2**20:
        return f"{size:,} bytes"
    return f"{size / 2**20:,.1f} MB"


def _waiting_text(registration):
    return f"{_where_the_check_is(registration)} (this page follows the check)."


def _where_the_check_is(registration):
    """The waiting registration's real state, in words."""
    if registration.is_abandoned():
        return (
            "The worker checking it stopped (no heartbeat since "
            f"{registration.lease_expires:%H:%M:%S}); the check is queued again by itself within "
            "about a minute, or at once with Check again"
        )
    if registration.status == registration.RUNNING:
        return f"A worker is loading and running the model (attempt {registration.attempts})"
    return "Waiting for a worker to take the check"
