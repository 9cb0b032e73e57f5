"""The vote: one score for the trial on the rater's screen, answered with the next trial.

The page posts with `Accept: application/json` and gets JSON; without JavaScript the form
posts and the answer is a page. Both go through `Rater.cast_vote` and the same refusals.
"""

import re

from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from study.models import Rater, VoteInvalid, VoteRejected, VoteTooFast, rater_url
from study.rating.access import not_live
from study.rating.display import display_passed
from study.rating.forms import clean_vote
from study.rating.views import hand_out, render_trial, trial_payload, upcoming_trials

# The page's id for one vote (a resend carries the same one); anything else is no id.
VOTE_ID = re.compile(r"[A-Za-z0-9_-]{8,36}")


class _PageReply:
    """How the vote view answers a plain form post (no JavaScript): pages and redirects."""

    def __init__(self, request, rater):
        self.request, self.rater = request, rater

    def not_live(self):
        return not_live(self.request, self.rater.campaign, status=409)

    def not_started(self):
        return redirect("study:session", token=self.rater.token)

    def too_fast(self, exc):
        return self.refused(str(exc), 429)

    def refused(self, message, status):
        """The trial page again with the reason a vote was not taken."""
        upcoming = upcoming_trials(self.rater)
        if not upcoming:
            return redirect("study:done", token=self.rater.token)
        return render_trial(
            self.request, self.rater, hand_out(upcoming), error=message, status=status
        )

    def accepted(self, outcome, payload):
        return redirect("study:session", token=self.rater.token)


class _JsonReply:
    """How the vote view answers the rating page's script: JSON, with the next trial."""

    def __init__(self, request, rater):
        self.rater = rater

    def not_live(self):
        # The page reloads and shows why (the study has ended, or not begun).
        return JsonResponse({"error": "This study is not open.", "resync": True}, status=409)

    def not_started(self):
        return JsonResponse({"error": "Please start from your link.", "resync": True}, status=409)

    def too_fast(self, exc):
        # The page keeps its image and takes the score again once it has been seen long enough.
        return JsonResponse(
            {"error": str(exc), "too_fast": True, "retry_in_ms": exc.wait_ms}, status=429
        )

    def refused(self, message, status):
        # A 409 means the page and the server disagree on the current image: the page reloads.
        return JsonResponse({"error": message, "resync": status == 409}, status=status)

    def accepted(self, outcome, payload):
        # A resend of a vote already stored is that vote: only another window's is a duplicate.
        return JsonResponse(
            {
                "status": "stored" if outcome.stored or outcome.resent else "duplicate",
                "next": payload,
                "done_url": rater_url("study:done", self.rater.token),
            }
        )


@require_POST
def vote(request, token):
    # The session, its campaign and its next trials in one read (cast_vote needs no other).
    rater, pending = Rater.objects.for_vote(token)
    if rater is None:
        raise Http404("No such session.")
    as_json = "application/json" in request.headers.get("Accept", "")
    reply = (_JsonReply if as_json else _PageReply)(request, rater)
    if not rater.is_open():
        return reply.not_live()
    # Votes belong to the trials step, in a browser that passed the display check (a resent
    # last vote finds the session done, and is answered as a duplicate).
    if rater.stage() not in (Rater.TRIALS, Rater.DONE) or not display_passed(request, rater):
        return reply.not_started()
    data, refusal = clean_vote(request.POST)
    if refusal:
        return reply.refused(refusal, 400)
    vote_id = request.POST.get("vote_id", "")
    vote_id = vote_id if VOTE_ID.fullmatch(vote_id) else ""
    try:
        # One statement stores the vote and hands the next trial out (Rater.cast_vote); a
        # protocol that picks its next pair late does so in its own transaction.
        outcome = rater.cast_vote(
            data["position"], data["score"], data.get("duration_ms"), vote_id, pending
        )
        payload = trial_payload(rater, hand_out(outcome.upcoming)) if as_json else None
    except VoteTooFast as exc:
        return reply.too_fast(exc)
    except VoteInvalid as exc:
        return reply.refused(str(exc), 400)
    except VoteRejected as exc:
        return reply.refused(str(exc), 409)
    return reply.accepted(outcome, payload)
