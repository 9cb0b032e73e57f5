from django.core.management.base import CommandError

from study.datasets.importing import ImportFailed
from study.models import Campaign


def get_campaign(ref):
    """A campaign by name or primary key, or a CommandError that says which exist."""
    campaign = Campaign.objects.filter(name=ref).first()
    if campaign is None and str(ref).isdigit():
        campaign = Campaign.objects.filter(pk=int(ref)).first()
    if campaign is None:
        names = ", ".join(Campaign.objects.values_list("name", flat=True)) or "none yet"
        raise CommandError(f"no campaign {ref!r} (campaigns: {names})")
    return campaign


def run_import(command, do_import):
    """Run an import, print its per-file report; bad input becomes a CommandError."""
    try:
        report = do_import()
    except ImportFailed as exc:
        for line in exc.report.lines():
            command.stderr.write(line)
        raise CommandError(str(exc)) from None
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    for line in report.lines():
        command.stdout.write(line)
    return report
