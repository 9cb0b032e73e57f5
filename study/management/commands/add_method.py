import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from study.generation import registering
from study.models.networks import ROUTES, ModelRegistration
from study.storage import DiskFull


class Command(BaseCommand):
    help = (
        "Register your own super-resolution network as a method: the file is stored once "
        "(sha256), a worker loads it, runs it on small inputs and creates the method, or says "
        "why not. Loading a model runs its code: register only files you trust (docs/models.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="weights, TorchScript, torch.export .pt2 or srmos file")
        parser.add_argument("name", help="the method's name in every table (letters, digits, -_)")
        parser.add_argument("--route", choices=[r for r, _ in ROUTES], default="auto")
        parser.add_argument("--scale", type=int, default=4, help="what the model should do")
        parser.add_argument("--title", default="", help="a longer display name")
        parser.add_argument("--description", default="")
        parser.add_argument("--class-path", default="", help='own class: "package.module:Class"')
        parser.add_argument("--kwargs", default="{}", help="own class: JSON of its arguments")
        parser.add_argument("--input-range", choices=["0,1", "-1,1"], default="0,1")
        parser.add_argument("--output-range", choices=["0,1", "-1,1"], default="0,1")
        parser.add_argument("--channels", choices=["rgb", "bgr"], default="rgb")
        parser.add_argument(
            "--half", action="store_true", help="half precision on GPUs, if it matches fp32"
        )
        parser.add_argument(
            "--no-wait", action="store_true", help="queue the check and return at once"
        )
        parser.add_argument("--timeout", type=float, default=600, help="seconds to wait at most")

    def handle(self, file, name, **o):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file")
        try:
            kwargs = json.loads(o["kwargs"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--kwargs is not JSON: {exc.msg}") from None
        if not isinstance(kwargs, dict):
            raise CommandError('--kwargs must be a JSON object, e.g. {"scale": 4}')
        try:
            with transaction.atomic(), path.open("rb") as f:
                registration = registering.register(
                    f,
                    path.name,
                    slug=name,
                    name=o["title"],
                    description=o["description"],
                    route=o["route"],
                    class_path=o["class_path"],
                    kwargs=kwargs,
                    input_range=o["input_range"],
                    output_range=o["output_range"],
                    channels=o["channels"],
                    scale=o["scale"],
                    half_requested=o["half"],
                )
        except (registering.RegistrationRefused, DiskFull) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{path.name} stored as {registration.file} (sha256 {registration.sha256}); "
            "queued for a worker's check"
        )
        if not o["no_wait"]:
            self._wait(registration, o["timeout"])

    def _wait(self, registration, timeout):
        deadline = time.monotonic() + timeout
        while not registration.settled:
            if time.monotonic() > deadline:
                raise CommandError(
                    f"no verdict after {timeout:.0f} s; is a worker serving the gpu queue? "
                    f"(the registration #{registration.pk} stays queued)"
                )
            time.sleep(0.3)
            registration.refresh_from_db()
        if registration.status == ModelRegistration.REFUSED:
            raise CommandError(f"{registration.slug} refused: {registration.error}")
        half = ""
        if registration.half_requested:
            half = f"; half precision {'on' if registration.half_ok else 'off'}"
            half += f" ({registration.half_note})" if registration.half_note else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"{registration.slug} registered: {registration.architecture}, "
                f"x{registration.scale}, {registration.parameter_count:,} parameters, sha256 "
                f"{registration.sha256[:12]}{half}"
            )
        )
