import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from study.generation import queue
from study.generation.progress import generation_report
from study.management.commands._helpers import get_campaign
from study.models import Campaign


class Command(BaseCommand):
    help = "Queue a campaign's candidates for the Celery workers (optionally wait until done)."

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign name or id")
        parser.add_argument(
            "--wait", action="store_true", help="wait until every candidate is made"
        )
        parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait at most")
        parser.add_argument(
            "--retry-failed", action="store_true", help="queue failed candidates again"
        )

    def handle(self, campaign, wait, timeout, retry_failed, **options):
        campaign = get_campaign(campaign)
        try:
            if retry_failed:
                self.stdout.write(f"{queue.retry_failed(campaign)} failed candidates queued again")
            queued = queue.start_generation(campaign)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        campaign.refresh_from_db(fields=["status"])
        unchanged = campaign.nothing_to_do("generate") if not queued else ""
        self.stdout.write(unchanged or f"{queued} candidates queued for {campaign.name}")
        if not wait:
            return
        deadline = time.monotonic() + timeout
        lease = settings.SRMOS_GENERATION_LEASE
        last, printed, warned = None, 0.0, None
        requeued, republished = time.monotonic(), False  # start_generation just queued all
        while True:
            campaign.refresh_from_db()
            report = generation_report(campaign)
            p = report.counts
            line = " ".join(f"{k}={v}" for k, v in p.items())
            if not report.remaining and report.metrics_text:
                line += f"; {report.metrics_text}"  # ready once they are in
            finished = campaign.status != Campaign.GENERATING or (
                p["queued"] == p["running"] == 0 and not report.metrics_waiting
            )
            if line != last and (finished or time.monotonic() - printed > 2):
                self.stdout.write(line)
                last, printed = line, time.monotonic()
            if finished:
                # Every candidate is made; the last worker may not have said so yet.
                campaign.update_generation_status()
                campaign.refresh_from_db()
                break
            if report.abandoned and time.monotonic() - requeued > lease:
                # Their worker died mid-task; a broker that lost the message will not redeliver.
                # Once per lease: a live worker claims a queued candidate within that time.
                requeued = time.monotonic()
                again = queue.requeue_abandoned(campaign)
                self.stderr.write(f"{again} candidate(s) lost their worker: queued them again")
            elif report.idle and not republished:
                # Queued, nobody working, nothing moving: their messages may be lost with a
                # killed worker. Publish them once more (harmless if they were not).
                republished = True
                self.stderr.write(report.stall_message())
                self.stderr.write(f"queued {queue.start_generation(campaign)} candidate(s) again")
            elif report.stalled and (bool(report.abandoned), report.idle) != warned:
                warned = (bool(report.abandoned), report.idle)  # say it once per kind of stall
                self.stderr.write(report.stall_message())
            if time.monotonic() > deadline:
                raise CommandError(f"timed out after {timeout:.0f} s; is a worker running?")
            time.sleep(0.5)
        if p["failed"]:
            raise CommandError(
                f"{p['failed']} candidates failed; see the admin or retry with --retry-failed"
            )
        self.stdout.write(self.style.SUCCESS(f"{campaign.name} is {campaign.status}"))
