from django import forms


class VoteForm(forms.Form):
    position = forms.IntegerField(min_value=0)
    score = forms.IntegerField(
        min_value=1,
        max_value=5,
        error_messages={
            "invalid": "A score is a whole number from 1 (bad) to 5 (excellent).",
            "min_value": "A score is a whole number from 1 (bad) to 5 (excellent).",
            "max_value": "A score is a whole number from 1 (bad) to 5 (excellent).",
            "required": "Choose a score from 1 (bad) to 5 (excellent).",
        },
    )
