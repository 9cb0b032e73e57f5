import time
from pathlib import Path

import pandas as pd
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_slug
from django.db import transaction
from django.urls import reverse

from sr_models.methods import get_method
from sr_models.metric_specs import DEFAULT_PANEL, METRICS
from study.analysis import VotesError
from study.datasets import paper
from study.datasets.importing import ImportFailed
from study.generation import queue
from study.models import Campaign, Candidate, Dataset, Method
from study.models.catalog import paper_order
from study.rating.simulated import add_simulated_raters, caveat
from study.reports.frames import export_report

# The paper's MOS study (section 3.3) as far as srmos has its methods: nearest neighbour,
# bicubic, the networks srmos trains itself that the paper rated, the authors' own outputs and
# the original HR image. SelfExSR, DRCN and the VGG22 variants are not here.
INTERPOLATION = ["nearest", "bicubic"]
OWN_NETWORKS = ["srcnn", "espcn", "srresnet-mse", "srgan-mse"]
REFERENCE = ["hr"]
RATERS = 26
DESIGN = {
    "description": "The SRGAN paper's MOS study (Ledig et al. 2017, section 3.3) re-run on Set5 "
    "and Set14 at x4: the authors' SRGAN-VGG54 and SRResNet-MSE outputs beside srmos' own "
    "methods, 20 BSD300 training images for calibration (nearest = 1, HR = 5), 26 raters.",
    "scale": paper.SCALE,
    "kernel": paper.LR_KERNEL,
    "lr_source": Campaign.LR_KERNEL,
    "seed": 2017,
    "rater_links": RATERS,
    "calibration_images": paper.CALIBRATION_IMAGES,
    # The paper's pilot showed one method's images twice; a share of every method's here.
    "retest_share": 0.05,
    "gold_items": True,
    "min_view_ms": 1000,
    "break_every": 100,
}


class Command(BaseCommand):
    help = (
        "Re-run the SRGAN paper's MOS study in one command: import Set5 and Set14 with the "
        "authors' SRGAN-VGG54 and SRResNet-MSE outputs and 20 BSD calibration images from "
        "DATA_DIR, build the paper's design, generate (a running worker, else this process) "
        "and launch it with 26 rater links; --simulate adds simulated raters and writes a "
        "pilot report. Safe to run again: what exists is kept."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "data_dir", help="folder with Set5/, Set14/ (HR, LRx4, results/) and BSD200/HR/"
        )
        parser.add_argument("--name", default="srgan-replication", help="the campaign's name")
        parser.add_argument(
            "--simulate",
            action="store_true",
            help=f"add {RATERS} simulated raters (labelled simulated) and write a pilot report",
        )
        parser.add_argument(
            "--without-networks",
            action="store_true",
            help="leave srmos' own networks (" + ", ".join(OWN_NETWORKS) + ") out of a new "
            "campaign: a quick run on a CPU",
        )
        parser.add_argument(
            "--metrics",
            default=",".join(DEFAULT_PANEL),
            help="objective metrics beyond PSNR/SSIM for a new campaign, comma-separated, or "
            "'none' (the paper reports PSNR/SSIM only; default: %(default)s)",
        )
        parser.add_argument(
            "--report-dir",
            default=None,
            help="where --simulate writes the report (default: SRMOS_DATA_DIR/reports/NAME)",
        )
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000", help="prefix of the printed links"
        )
        parser.add_argument(
            "--timeout", type=float, default=3600, help="seconds to wait for a worker at most"
        )

    def handle(self, data_dir, name, simulate, without_networks, **options):
        self.base = options["base_url"].rstrip("/")
        metrics = [m.strip() for m in options["metrics"].split(",") if m.strip()]
        metrics = [] if metrics == ["none"] else metrics
        self.check_first(data_dir, name, metrics)
        try:
            paper.import_paper_data(data_dir, self.stdout.write)
        except ImportFailed as exc:
            for line in exc.report.lines():
                self.stderr.write(line)
            raise CommandError(str(exc)) from None
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        campaign = self.campaign(name, without_networks, metrics)
        if campaign.status == Campaign.CLOSED:
            self.stdout.write(
                f"campaign {name} is closed: its votes are final, so nothing is generated, "
                "launched or simulated. Clone it in the admin to run the design again."
            )
        else:
            self.generate(campaign, options["timeout"])
            self.launch(campaign)
        report = None
        if simulate:
            report = self.simulate(campaign, options["report_dir"])
        self.next_steps(campaign, report)

    def check_first(self, data_dir, name, metrics):
        """Everything that can be checked before anything is changed, all problems at once."""
        problems = [f"missing: {line}" for line in paper.missing_files(data_dir)]
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            problems.append(
                f"--metrics: unknown {', '.join(unknown)}; choose from {', '.join(METRICS)} or none"
            )
        try:
            validate_slug(name)
        except ValidationError:
            problems.append(f"--name {name!r} must be letters, digits, - and _ only")
        needed = INTERPOLATION + REFERENCE
        known = set(Method.objects.filter(slug__in=needed).values_list("slug", flat=True))
        problems += [
            f"the built-in method {slug} is missing: run `python manage.py migrate`"
            for slug in needed
            if slug not in known
        ]
        if problems:
            raise CommandError(
                f"{data_dir} cannot be used for the SRGAN study; nothing was imported or "
                "created. Fix these and run the command again (docs/running-a-study.md shows "
                "the layout):\n  " + "\n  ".join(problems)
            )

    def campaign(self, name, without_networks, metrics):
        campaign = Campaign.objects.filter(name=name).first()
        if campaign is not None:
            methods = ", ".join(m.slug for m in paper_order(campaign.methods.all()))
            self.stdout.write(
                f"campaign {name} exists ({campaign.get_status_display().lower()}, methods "
                f"{methods}): kept as it is"
            )
            return campaign
        networks = [] if without_networks else [s for s in OWN_NETWORKS if self.runnable(s)]
        slugs = INTERPOLATION + networks + [r.slug for r in paper.AUTHORS] + REFERENCE
        methods = list(Method.objects.filter(slug__in=slugs))
        campaign = Campaign(
            name=name,
            calibration_dataset=Dataset.objects.get(name=paper.CALIBRATION_DATASET),
            metrics=metrics,
            **DESIGN,
        )
        problems = campaign.design_problems(methods)
        try:
            campaign.full_clean()
        except ValidationError as exc:
            problems += [f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()]
        if problems:
            raise CommandError(f"the paper's design cannot be made: {' '.join(problems)}")
        with transaction.atomic():
            campaign.save()
            campaign.datasets.set(Dataset.objects.filter(name__in=paper.SETS))
            campaign.methods.set(methods)
        design = ", ".join(m.slug for m in paper_order(methods))
        panel = ", ".join(["psnr", "ssim", *metrics])
        self.stdout.write(
            f"created campaign {name}: {design} on {', '.join(paper.SETS)} at x{campaign.scale} "
            f"(LR: {campaign.lr_description()}), {campaign.calibration_images} calibration "
            f"images, {campaign.rater_links} rater links, metrics {panel}"
        )
        if without_networks:
            self.stdout.write(f"left out on request: {', '.join(OWN_NETWORKS)}")
        for warning in campaign.lr_warnings():
            self.stderr.write(self.style.WARNING(f"warning: LR inputs differ. {warning}"))
        return campaign

    def runnable(self, slug):
        method = Method.objects.filter(slug=slug).first()
        if method is None:
            self.stderr.write(f"leaving {slug} out: no such method (run migrate)")
            return False
        try:
            get_method(method.sr_method, scale=paper.SCALE)
        except Exception as exc:
            self.stderr.write(f"leaving {slug} out: {exc}")
            return False
        return True

    def generate(self, campaign, timeout):
        if campaign.status not in (Campaign.DRAFT, Campaign.GENERATING):
            self.stdout.write(f"candidates of {campaign.name}: all made")
            return
        from config.celery import app

        if not app.conf.task_always_eager and worker_answers(app):
            self.stdout.write("a Celery worker answered: it makes the candidates")
            call_command(
                "generate_candidates",
                campaign.name,
                "--wait",
                "--timeout",
                str(timeout),
                stdout=self.stdout,
                stderr=self.stderr,
            )
            campaign.refresh_from_db()
            return
        planned = len(campaign.planned_candidates())
        self.stdout.write(
            f"no Celery worker answered: making {planned} candidates in this process (a "
            "worker started with `celery -A config worker -Q gpu,cpu` would take them)"
        )
        started, eager = time.monotonic(), app.conf.task_always_eager
        app.conf.task_always_eager = True
        try:
            queue.start_generation(campaign)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        finally:
            app.conf.task_always_eager = eager
        campaign.refresh_from_db()
        campaign.update_generation_status()
        campaign.refresh_from_db()
        failed = campaign.candidates.filter(status=Candidate.FAILED).count()
        if failed:
            raise CommandError(
                f"{failed} candidates of {campaign.name} failed: see the campaign page, then "
                f"`python manage.py generate_candidates {campaign.name} --retry-failed --wait`"
            )
        self.stdout.write(
            f"{campaign.candidates.count()} candidates made in {time.monotonic() - started:.0f} s"
        )

    def launch(self, campaign):
        had = campaign.raters.links().count()
        try:
            campaign.launch()
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        links = campaign.raters.links().count()
        if had:
            self.stdout.write(f"{campaign.name} is live: {had} rater links exist, {links} now")
        else:
            self.stdout.write(self.style.SUCCESS(f"{campaign.name} is live: {links} rater links"))

    def simulate(self, campaign, report_dir):
        simulated = campaign.raters.simulated().count()
        if simulated:
            self.stdout.write(
                f"{simulated} simulated raters exist: kept (simulate_raters adds another batch)"
            )
        elif campaign.status == Campaign.LIVE:
            try:
                votes = add_simulated_raters(campaign, RATERS, "paper", bad=2, seed=0)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"added {RATERS} simulated raters (2 careless): {votes} votes")
            if caveat(campaign):
                self.stderr.write(self.style.WARNING(f"warning: {caveat(campaign)}"))
        out = Path(report_dir or settings.DATA_DIR / "reports" / campaign.name)
        try:
            paths = export_report(campaign, out)
        except (ValueError, VotesError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"pilot report (SIMULATED votes) written to {out}")
        table = pd.read_csv(paths["table2.csv"])
        mos = table[table["metric"] == "mos"].drop(columns="metric").set_index("dataset")
        self.stdout.write("MOS per method (Table 2):\n" + mos.to_string())
        return out

    def next_steps(self, campaign, report):
        def url(name, *args):
            return self.base + reverse(f"admin:{name}", args=[campaign.pk, *args])

        links = campaign.raters.links().count()
        lines = [
            "",
            "What next (serve the site with `python manage.py serve`, log in as a staff user; "
            "`python manage.py createsuperuser` makes one):",
            f"  campaign page:   {url('study_campaign_change')}",
            f"  compare images:  {url('study_campaign_viewer')}",
            f"  rater links:     {links} links, {url('study_campaign_export', 'links')} (CSV), "
            f"or `python manage.py launch {campaign.name}` prints them",
            f"  live report:     {url('study_campaign_report')}",
            f"  at the end:      python manage.py close {campaign.name}; python manage.py "
            f"export_report {campaign.name} report/",
        ]
        if report:
            lines.append(f"  pilot report:    {report} (table2.csv: the paper's Table 2)")
        self.stdout.write("\n".join(lines))


def worker_answers(app):
    """Whether a Celery worker answers a ping on the configured broker within a second or two."""
    try:
        return bool(app.control.ping(timeout=1.5))
    except Exception:  # a broker that cannot be reached has no worker to answer either
        return False
