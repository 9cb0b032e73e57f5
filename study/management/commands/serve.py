from django.core.management import call_command
from django.core.management.base import BaseCommand

from study.management import processes


class Command(BaseCommand):
    help = "Serve the site (gunicorn) with a Celery worker beside it until Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1:8000")
        parser.add_argument("--no-worker", action="store_true")

    def handle(self, bind, no_worker, **options):
        call_command("collectstatic", interactive=False, verbosity=0)
        children = [] if no_worker else [processes.start_worker()]
        children.append(processes.start_web(bind))
        self.stdout.write(f"serving on http://{bind}/ (Ctrl-C stops web and worker)")
        raise SystemExit(processes.supervise(children))
