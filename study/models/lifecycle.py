"""A campaign's life after its design: launch (links made, live), crowd enrolment, close, and
a clone to start again; a mixin of `Campaign`, kept apart so the model reads as its fields."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from study.models.design import KERNEL_CHOICES
from study.models.tokens import participant_key


class CampaignLifecycle:
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
            if campaign.status == self.CLOSED:
                raise ValueError(
                    f"Campaign {campaign.name} is closed: its votes are final and it cannot be "
                    "launched again. Clone it to run the same design as a new study."
                )
            if campaign.status not in (self.READY, self.LIVE):
                raise ValueError(
                    f"Campaign {campaign.name} is {campaign.get_status_display().lower()}; "
                    "only a campaign whose candidates are all generated can be launched."
                )
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

        Returns (sessions, completed sessions, votes) of people for the researcher; raises ValueError
        when the campaign is not live.
        """
        closed = (
            type(self)
            .objects.filter(pk=self.pk, status=self.LIVE)
            .update(status=self.CLOSED, closed_at=timezone.now())
        )
        self.refresh_from_db()
        if not closed:
            raise ValueError(
                f"Campaign {self.name} is {self.get_status_display().lower()}, not live: only a "
                "live campaign can be closed."
            )
        # People only: previews and simulated sessions are not participants.
        raters = self.raters.people()
        votes = raters.filter(trials__score__isnull=False).count()
        return raters.count(), raters.filter(completed_at__isnull=False).count(), votes

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
