from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("study", "0012_one_person_one_session"),
    ]

    operations = [
        migrations.AddField(
            model_name="trial",
            name="vote_id",
            field=models.CharField(blank=True, editable=False, max_length=36),
        ),
    ]
