from django.core.management import call_command
from django.core.management.base import BaseCommand

from study.management import processes


class Command(BaseCommand):
    help = "Serve the site (gunicorn) with a Celery worker beside it until Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1:8000")
        parser.add_argument("--no-worker", action="store_true")
        parser.add_argument(
            "--debug",
            action="store_true",
            help="run the web with DEBUG on (tracebacks in the browser): only on your own machine",
        )

    def handle(self, bind, no_worker, debug, **options):
        call_command("collectstatic", interactive=False, verbosity=0)
        children = [] if no_worker else [processes.start_worker()]
        debug = processes.web_debug(True if debug else None)
        children.append(processes.start_web(bind, debug=debug))
        self.stdout.write(f"serving on http://{bind}/ (Ctrl-C stops web and worker)")
        if debug:
            self.stdout.write(
                self.style.WARNING(
                    "DEBUG is on: error pages show tracebacks and settings to anyone who can "
                    "reach this address. Never use it on a port others can reach."
                )
            )
        raise SystemExit(processes.supervise(children))
