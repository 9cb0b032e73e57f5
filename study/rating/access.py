"""How every rater view reaches a session, and the protocol's order of steps.

A session goes consent -> display check -> calibration (when the campaign has one) -> trials ->
done (`Rater.stage`). A request for any other step, or on a campaign that is not live, is
refused with the reason and stores nothing.
"""

from django.http import Http404
from django.shortcuts import render

from study.models import Rater

# What a rater who asks for another step is told, by the step the session is really at.
STEP_FIRST = {
    Rater.CONSENT: "Please read the information and give your consent first.",
    Rater.DISPLAY: "Please complete the display check first.",
    Rater.CALIBRATION: "Please look through the example images first.",
    Rater.TRIALS: "This step is over: your session continues with the images to rate.",
    Rater.DONE: "Your session is complete: there is nothing more to rate.",
}


def get_rater(token):
    """The only way a view reaches a rater: an unknown token is a 404, never a hint."""
    try:
        # get(), not first(): a unique token needs no ORDER BY.
        return Rater.objects.select_related("campaign").get(token=token)
    except Rater.DoesNotExist:
        raise Http404("No such session.") from None


def not_live(request, campaign, status=200):
    return render(request, "study/closed.html", {"campaign_status": campaign.status}, status=status)


def out_of_order(request, rater, allowed):
    """The answer to a request for a step the session is not at, or None when it is at one of
    `allowed` and the campaign is live."""
    if not rater.is_open():
        return not_live(request, rater.campaign, status=409)
    stage = rater.stage()
    if stage in allowed:
        return None
    context = {"rater": rater, "message": STEP_FIRST[stage]}
    return render(request, "study/out_of_order.html", context, status=409)
