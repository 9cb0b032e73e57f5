from django.core.management.base import BaseCommand

from sr_models.degrade import KERNELS
from study.datasets.importing import read_folder
from study.datasets.results import import_results
from study.management.commands._helpers import run_import


class Command(BaseCommand):
    help = (
        "Import a folder of SR results made elsewhere as an imported method, matched to the "
        "dataset's images by name stem; all or nothing by default."
    )

    def add_arguments(self, parser):
        parser.add_argument("dataset", help="name of an imported dataset")
        parser.add_argument("method", help="method slug; created as an imported method if new")
        parser.add_argument("folder")
        parser.add_argument(
            "--skip-bad", action="store_true", help="import the good files, report the bad"
        )
        parser.add_argument(
            "--scale", type=int, default=None, help="results may be the HR modcropped to this"
        )
        parser.add_argument(
            "--lr-input",
            choices=[*KERNELS, "dataset", "unknown"],
            default=None,
            help="how the LR images the results were made from were produced: a kernel, the "
            "dataset's own LR images, or unknown (the default for a new method)",
        )

    def handle(self, dataset, method, folder, skip_bad, scale, lr_input, **options):
        report = run_import(
            self,
            lambda: import_results(
                dataset,
                method,
                read_folder(folder),
                skip_bad=skip_bad,
                scale=scale,
                lr_input=lr_input,
            ),
        )
        self.stdout.write(
            self.style.SUCCESS(f"{len(report.imported)} results of {method} imported for {dataset}")
        )
