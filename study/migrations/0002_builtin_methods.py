from django.db import migrations

# The paper's comparison methods that sr_models can run here (SRGAN.md, Table 2).
BUILTIN = [
    (
        "nearest",
        "Nearest neighbour",
        "interpolation",
        "Nearest-neighbour upscaling of the LR image.",
    ),
    ("bicubic", "Bicubic", "interpolation", "MATLAB-compatible bicubic imresize."),
    ("lanczos", "Lanczos", "interpolation", "Lanczos-3 upscaling."),
    ("srcnn", "SRCNN", "network", "SRCNN 9-5-5 (Dong et al.), trained by sr_models."),
    ("espcn", "ESPCN", "network", "ESPCN (Shi et al.), trained by sr_models."),
    ("srresnet-mse", "SRResNet-MSE", "network", "SRResNet with MSE loss (Ledig et al.)."),
    ("srgan-mse", "SRGAN-MSE", "network", "SRGAN with MSE content loss (Ledig et al.)."),
    ("hr", "HR reference", "reference", "The original high-resolution image."),
]


def add_methods(apps, schema_editor):
    Method = apps.get_model("study", "Method")
    for slug, name, kind, description in BUILTIN:
        Method.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "kind": kind,
                "description": description,
                "parameters": {"sr_method": slug} if kind != "reference" else {},
            },
        )


class Migration(migrations.Migration):
    dependencies = [("study", "0001_initial")]

    operations = [migrations.RunPython(add_methods, migrations.RunPython.noop)]
