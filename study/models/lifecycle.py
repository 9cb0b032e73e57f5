"""A campaign's life after its design: launch (links made, live), crowd enrolment, close, and
a clone to start again; a mixin of `Campaign`, kept apart so the model reads as its fields."""

from dataclasses import dataclass
from functools import cached_property

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from study.models.design import KERNEL_CHOICES
from study.models.tokens import participant_key

# What the researcher can do to a campaign (the admin's buttons and list actions, the commands),
# in the order of a study's life; `CampaignLifecycle.refusal` says why one cannot run now.
ACTIONS = ("generate", "launch", "preview", "simulate", "close", "clone", "export")


@dataclass(frozen=True)
class VoteCount:
    """A campaign's sessions and votes as its report counts them: people's sessions, and every
    vote that is data (people's and simulated pilots', never the researcher's preview)."""

    name: str
    sessions: int  # people's sessions (links and crowd joins)
    completed: int
    votes: int  # what the report holds
    simulated_votes: int
    simulated_sessions: int

    @property
    def people_votes(self):
        return self.votes - self.simulated_votes

    def __str__(self):
        people = f"{self.completed} of {self.sessions} rater sessions completed by people"
        if not self.votes:
            return f"{people}; the report holds no votes"
        held = f"the report holds {self.votes:,} votes"
        if self.simulated_votes:
            held += (
                f", {self.simulated_votes:,} of them simulated ({self.simulated_sessions} "
                f"simulated rater{'s' * (self.simulated_sessions != 1)})"
            )
        return f"{people}; {held}"

    def closed(self):
        """What Close says it did (the admin and the command)."""
        return f"{self.name} is closed: {self}. Its links now say the study has ended."


class _Facts:
    """What the refusals read, each fetched once, and only when a refusal needs it."""

    def __init__(self, campaign):
        self.campaign = campaign

    @cached_property
    def progress(self):
        return self.campaign.progress()

    @cached_property
    def votes(self):
        return self.campaign.vote_count()

    @cached_property
    def links(self):
        return self.campaign.raters.links().count()

    def made(self):
        p = self.progress
        made = f"{p['done']} of {sum(p.values())} made" + (
            f", {p['failed']} failed: press Retry failed" if p["failed"] else ""
        )
        # A campaign is ready once its metrics are in too (a CPU worker computes them).
        waiting = self.campaign.metrics_waiting_text() if p["done"] == sum(p.values()) else ""
        return f"{made}; {waiting}" if waiting else made


class CampaignLifecycle:
    def refusal(self, action, facts=None):
        """Why `action` (one of ACTIONS) cannot run on this campaign now, as a sentence that
        says what to do instead, or "" when it can.

        The one wording of every way in: the campaign page's buttons, the list actions, the
        commands, and the model methods that refuse (`launch`, `close`, simulated raters).
        """
        facts = facts or _Facts(self)
        if action == "generate":
            return self.refuse_generation()
        if action == "clone":
            return "" if self.pk else "Save the campaign before cloning it."
        if action == "export":
            return self._export_refusal(facts)
        if action not in ACTIONS:
            raise ValueError(f"unknown campaign action {action!r}: one of {', '.join(ACTIONS)}")
        if self.status == self.CLOSED:
            return (
                f"Campaign {self.name} is closed: its votes are final. Clone it to run the "
                "same design again."
            )
        if action == "close":
            if self.status == self.LIVE:
                return ""
            return (
                f"Campaign {self.name} is {self.get_status_display().lower()}, not live: only a "
                "live campaign can be closed (Launch makes it live)."
            )
        if self.status == self.LIVE or (self.status == self.READY and action != "simulate"):
            return ""
        if self.status == self.READY:  # simulate
            return (
                f"Campaign {self.name} is ready but not live: simulated raters vote on a live "
                "campaign, beside its people. Press Launch first."
            )
        then = {
            "launch": "Launch once they all are made.",
            "preview": "Preview once they all are made.",
            "simulate": "Launch once they all are made: simulated raters vote on a live campaign.",
        }[action]
        if self.status == self.GENERATING:
            return (
                f"Campaign {self.name}'s candidates are still being generated ({facts.made()}); "
                f"{then}"
            )
        return (
            f"Campaign {self.name} is a draft: its candidates are not generated yet. Press "
            f"Generate, then {then}"
        )

    def nothing_to_do(self, action, facts=None):
        """Why `action` would run but change nothing now ("" when it would do something):
        the campaign page disables its button and says this instead; a command or list action
        says it and succeeds."""
        facts = facts or _Facts(self)
        if action == "generate" and self.status == self.READY:
            return "Nothing to generate: all candidates are made. Launch the campaign."
        if action == "launch" and self.status == self.LIVE and facts.links >= self.rater_links:
            return (
                f"Campaign {self.name} is live with its {facts.links} rater links; raise its "
                "'rater links' setting and launch again to add more."
            )
        return ""

    def why_not(self, action, facts=None):
        """The campaign page's reason to disable `action`'s button ("" to enable it)."""
        facts = facts or _Facts(self)
        return self.refusal(action, facts) or self.nothing_to_do(action, facts)

    def action_facts(self):
        """Shared reads for several `refusal`/`why_not` calls on one page."""
        return _Facts(self)

    def _export_refusal(self, facts):
        if not self.pk or not facts.votes.votes:
            noun = "comparisons" if self.kind.analysis == "comparisons" else "votes"
            return (
                f"Campaign {self.name} has no {noun} yet: nothing to report (people's and "
                "simulated pilots' votes are data, a preview's are not)."
            )
        return ""

    def vote_count(self):
        """The campaign's sessions and votes as its report counts them (`VoteCount`)."""
        rater = self.raters.model
        answered = Q(trials__score__isnull=False)
        simulated = Q(platform=rater.SIMULATED)
        counts = self.raters.exclude(platform=rater.PREVIEW).aggregate(
            votes=Count("trials", filter=answered),
            simulated_votes=Count("trials", filter=answered & simulated),
            simulated_sessions=Count("pk", filter=simulated, distinct=True),
            sessions=Count("pk", filter=~Q(platform__in=rater.NOT_PEOPLE), distinct=True),
            completed=Count(
                "pk",
                filter=~Q(platform__in=rater.NOT_PEOPLE) & Q(completed_at__isnull=False),
                distinct=True,
            ),
        )
        return VoteCount(name=self.name, **counts)

    def clone(self, name, seed=None):
        """A new draft campaign with this one's design and texts (a new seed when given).

        A kernel no longer in the registry becomes the default one in the copy (the caller
        says so: compare the kernels).
        """
        skip = {"id", "name", "status", "created_at", "launched_at", "closed_at"}
        skip |= {"generation_queued_at", "recruit_token", "completion_code", "seed"}
        values = {
            f.attname: getattr(self, f.attname)
            for f in self._meta.concrete_fields
            if f.name not in skip
        }
        if values["kernel"] not in dict(KERNEL_CHOICES):
            values["kernel"] = self._meta.get_field("kernel").default
        with transaction.atomic():
            copy = type(self).objects.create(
                name=name, seed=self.seed if seed is None else seed, **values
            )
            copy.datasets.set(self.datasets.all())
            copy.methods.set(self.methods.all())
        return copy

    def launch(self):
        """Make a ready campaign live with `rater_links` secret links.

        Idempotent: on a live campaign it only adds the links that `rater_links` asks for
        beyond those made already (raise the number, launch again).
        """
        # The last worker may not have moved the campaign to ready yet: its candidates are
        # all done a moment before it updates the status.
        self.update_generation_status()
        with transaction.atomic():
            campaign = type(self).objects.select_for_update().get(pk=self.pk)
            refused = campaign.refusal("launch")
            if refused:
                raise ValueError(refused)
            missing = campaign.rater_links - campaign.raters.links().count()
            for _ in range(max(missing, 0)):
                campaign.raters.create_with_trials(campaign)
            if campaign.status == self.READY:
                campaign.status = self.LIVE
                campaign.launched_at = timezone.now()
                campaign.save(update_fields=["status", "launched_at"])
        self.refresh_from_db()

    def close(self):
        """End a live campaign: its links show "this study has ended", every vote is kept.

        Returns its `VoteCount` (people's sessions, and the votes the report holds, simulated
        ones among them), whose `closed()` says what was done; raises ValueError with
        `refusal("close")` when the campaign is not live.
        """
        closed = (
            type(self)
            .objects.filter(pk=self.pk, status=self.LIVE)
            .update(status=self.CLOSED, closed_at=timezone.now())
        )
        self.refresh_from_db()
        if not closed:
            raise ValueError(self.refusal("close"))
        return self.vote_count()

    # Why a crowd participant cannot join (`enrol` returns one of these, or a session).
    NOT_LIVE, NO_RECRUITMENT, FULL_UP = "not-live", "no-recruitment", "full"
    CLIENT_LIMIT = "client-limit"

    def enrol(self, participant, client_key="", **fields):
        """The session of crowd participant `participant`, made now if they have none: a
        Rater, or the reason they cannot join (NOT_LIVE, NO_RECRUITMENT, FULL_UP,
        CLIENT_LIMIT).

        One person, one session: ids are compared as `participant_key` (case, punctuation and
        spaces removed), and one client (`client_key`: network address and browser) starts at
        most `sessions_per_client` sessions, unfinished ones included. Joins take turns (a row
        lock on PostgreSQL; SQLite's immediate transactions already serialise writers), so
        simultaneous joins cannot all see one free place; the row is read again under the
        lock, so a cap or status changed meanwhile counts. Two requests of one participant at
        once: the database's unique constraint lets one make the session, the other takes it.
        """
        key = participant_key(participant)
        try:
            with transaction.atomic():
                campaign = type(self).objects.select_for_update().get(pk=self.pk)
                if campaign.status != self.LIVE:
                    return self.NOT_LIVE
                if not campaign.open_recruitment:
                    return self.NO_RECRUITMENT
                joined = campaign.raters.exclude(participant_key="")
                rater = joined.filter(participant_key=key).first()
                if rater is not None:
                    return rater
                if campaign.max_participants and joined.count() >= campaign.max_participants:
                    return self.FULL_UP
                limit = campaign.sessions_per_client
                if limit and client_key and joined.filter(client_key=client_key).count() >= limit:
                    return self.CLIENT_LIMIT
                return campaign.raters.create_with_trials(
                    campaign,
                    participant_id=participant,
                    client_key=client_key,
                    opened_at=timezone.now(),
                    **fields,
                )
        except IntegrityError:
            return self.raters.get(participant_key=key)
