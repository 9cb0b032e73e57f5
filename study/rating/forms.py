from django import forms

MAX_DURATION_MS = 24 * 3600 * 1000


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


class DisplayCheckForm(forms.Form):
    viewport_width = forms.IntegerField(min_value=1, max_value=100000)
    viewport_height = forms.IntegerField(min_value=1, max_value=100000)
    dpr = forms.FloatField(min_value=0.1, max_value=16)
    screen_width = forms.IntegerField(required=False, min_value=0, max_value=100000)
    screen_height = forms.IntegerField(required=False, min_value=0, max_value=100000)
    go_on = forms.BooleanField(required=False)
