"""The demo dataset: scikit-image's bundled colour photographs (no download needed)."""

from pathlib import Path

from sr_models.io import write_png

SAMPLE_PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "motorcycle"]


def write_sample_photos(folder):
    from skimage import data

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    loaders = {
        "astronaut": data.astronaut,
        "coffee": data.coffee,
        "chelsea": data.chelsea,
        "rocket": data.rocket,
        "motorcycle": lambda: data.stereo_motorcycle()[0],
    }
    for name in SAMPLE_PHOTOS:
        path = folder / f"{name}.png"
        # Written whole or not at all: a file left by an interrupted run would be kept for good.
        if not path.exists():
            write_png(path, loaders[name]())
    return folder


CALIBRATION_PHOTOS = ["hubble_deep_field", "immunohistochemistry"]


def write_calibration_photos(folder):
    """Two other bundled colour photos, cropped to 400 x 400, to calibrate the demo's raters."""
    from skimage import data

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in CALIBRATION_PHOTOS:
        path = folder / f"{name}.png"
        if not path.exists():
            write_png(path, getattr(data, name)()[:400, :400])
    return folder
