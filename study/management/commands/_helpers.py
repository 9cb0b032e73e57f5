from django.core.management.base import CommandError

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
