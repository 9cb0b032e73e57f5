import re

from django import forms

MAX_DURATION_MS = 24 * 3600 * 1000
# What the rating page sends: plain digits (at most 12, so a number stays a number).
_DIGITS = re.compile(r"[0-9]{1,12}")


class VoteForm(forms.Form):
    position = forms.IntegerField(min_value=0)
    # Which whole numbers are answers is the protocol's to say (Rater.cast_vote checks).
    score = forms.IntegerField(
        error_messages={
            "invalid": "A score is a whole number from 1 (bad) to 5 (excellent).",
            "required": "Choose a score from 1 (bad) to 5 (excellent).",
        },
    )
    duration_ms = forms.IntegerField(required=False, min_value=0)

    def clean_duration_ms(self):
        # A tab left open overnight still votes; its viewing time is stored as "a day or more".
        value = self.cleaned_data["duration_ms"]
        return None if value is None else min(value, MAX_DURATION_MS)


def clean_vote(post):
    """The vote's fields as VoteForm cleans them, and "" or the refusal's message.

    The page sends plain digits, read here directly: building a form copies its fields, and
    that was a tenth of a vote's CPU. Anything else goes through VoteForm, whose messages (and
    rules) stay the only ones."""
    position, score = post.get("position", ""), post.get("score", "")
    duration = post.get("duration_ms", "")
    if _DIGITS.fullmatch(position) and _DIGITS.fullmatch(score):
        if duration == "" or _DIGITS.fullmatch(duration):
            return {
                "position": int(position),
                "score": int(score),
                "duration_ms": min(int(duration), MAX_DURATION_MS) if duration else None,
            }, ""
    form = VoteForm(post)
    if form.is_valid():
        return form.cleaned_data, ""
    return None, " ".join(e for errors in form.errors.values() for e in errors)


class DisplayCheckForm(forms.Form):
    viewport_width = forms.IntegerField(min_value=1, max_value=100000)
    viewport_height = forms.IntegerField(min_value=1, max_value=100000)
    dpr = forms.FloatField(min_value=0.1, max_value=16)
    screen_width = forms.IntegerField(required=False, min_value=0, max_value=100000)
    screen_height = forms.IntegerField(required=False, min_value=0, max_value=100000)
    go_on = forms.BooleanField(required=False)
