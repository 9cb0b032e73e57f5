from django.core.management.base import BaseCommand

from study.datasets.importing import import_folder
from study.management.commands._helpers import run_import


class Command(BaseCommand):
    help = "Import a folder of HR images (PNG, JPEG, BMP) as a dataset; all or nothing by default."

    def add_arguments(self, parser):
        parser.add_argument("name", help="dataset name (a slug), new or existing")
        parser.add_argument("folder")
        parser.add_argument(
            "--skip-bad", action="store_true", help="import the good files, report the bad"
        )
        parser.add_argument(
            "--calibration", action="store_true", help="mark the dataset for rater calibration"
        )
        parser.add_argument("--description", default="")
        parser.add_argument(
            "--lr-dir", default=None, help="the dataset's own LR images, matched by name stem"
        )
        parser.add_argument("--lr-scale", type=int, default=None, help="their scale (default 4)")

    def handle(self, name, folder, skip_bad, calibration, description, **options):
        report = run_import(
            self,
            lambda: import_folder(
                name,
                folder,
                lr_folder=options["lr_dir"],
                lr_scale=options["lr_scale"],
                skip_bad=skip_bad,
                description=description,
                is_calibration=calibration,
            ),
        )
        self.stdout.write(self.style.SUCCESS(f"{len(report.imported)} images imported into {name}"))
