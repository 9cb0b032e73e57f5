"""The SRGAN paper's images in one call: Set5 and Set14 (HR and the release's x4 LR), the
authors' own SRGAN-VGG54 and SRResNet-MSE outputs, and 20 BSD300 training images to calibrate
raters (Ledig et al. 2017, section 3.3). `paper_study` runs it before building the campaign.

The folder has the layout of the public copies in ../shared/data (its SOURCES.md):

    Set5/HR/baby_HR.png  Set5/LRx4/baby_LR.png  Set5/results/SRGAN-VGG54/baby_SRGAN-VGG54.png
    Set5/results/SRResNet-MSE/baby_SRResNet-MSE.png  (the same for Set14)  BSD200/HR/*.png

Every file is looked for before anything is imported, so a folder that lacks some is refused
with all of them named. Running it again imports only what is not there yet.
"""

from dataclasses import dataclass
from pathlib import Path

from study.datasets.importing import IMAGE_SUFFIXES, import_files
from study.datasets.results import import_results
from study.models import Dataset, ImportedResult, Method

# The images the paper rated (its Table 2), under the names of the authors' release.
SETS = {
    "set5": ("Set5", ("baby", "bird", "butterfly", "head", "woman")),
    "set14": (
        "Set14",
        (
            "baboon", "barbara", "bridge", "coastguard", "comic", "face", "flowers",
            "foreman", "lenna", "man", "monarch", "pepper", "ppt3", "zebra",
        ),
    ),
}  # fmt: skip
SCALE = 4
CALIBRATION_DATASET = "bsd-calibration"
CALIBRATION_FOLDER = "BSD200/HR"
CALIBRATION_IMAGES = 20  # "20 images from the BSD300 training set"
# The release's LR images are Pillow's antialiased bicubic of the HR (within one grey level,
# SOURCES.md); the calibration images have none, so the campaign makes every LR input so.
LR_KERNEL = "pil-bicubic"


@dataclass(frozen=True)
class AuthorsResults:
    slug: str  # the method's name in every table
    folder: str  # results/<folder>/<image>_<folder>.png in the release
    title: str


# srmos' own SRResNet-MSE network is the method `srresnet-mse`: the authors' outputs get
# another name, so the two stand side by side in one campaign.
AUTHORS = (
    AuthorsResults("srgan-vgg54", "SRGAN-VGG54", "SRGAN-VGG54 (the authors' outputs)"),
    AuthorsResults("srresnet-mse-authors", "SRResNet-MSE", "SRResNet-MSE (the authors' outputs)"),
)


def expected_files():
    """{folder: [file names]} of every Set5/Set14 file the study needs, relative to the root."""
    out = {}
    for folder, names in SETS.values():
        out[f"{folder}/HR"] = [f"{n}_HR.png" for n in names]
        out[f"{folder}/LRx{SCALE}"] = [f"{n}_LR.png" for n in names]
        for result in AUTHORS:
            out[f"{folder}/results/{result.folder}"] = [f"{n}_{result.folder}.png" for n in names]
    return out


def missing_files(root):
    """What the folder `root` lacks, one line per folder with every missing file named; an
    empty list when the study can be imported from it."""
    root = Path(root)
    if not root.is_dir():
        return [f"{root} is not a folder"]
    problems = []
    for folder, names in expected_files().items():
        lacking = [n for n in names if not (root / folder / n).is_file()]
        if len(lacking) == len(names) and not (root / folder).is_dir():
            problems.append(f"{folder}/ (the whole folder: {', '.join(lacking)})")
        elif lacking:
            problems.append(f"{folder}/: {', '.join(lacking)}")
    found = len(calibration_files(root))
    if found < CALIBRATION_IMAGES:
        problems.append(
            f"{CALIBRATION_FOLDER}/: {CALIBRATION_IMAGES} calibration images (PNG, JPEG or "
            f"BMP) from the BSD300 training set; {found} found"
        )
    return problems


def calibration_files(root):
    """The BSD300 training images shown for calibration: the first 20 by name."""
    folder = Path(root) / CALIBRATION_FOLDER
    if not folder.is_dir():
        return []
    images = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    return images[:CALIBRATION_IMAGES]


def import_paper_data(root, say):
    """Import what the study needs from `root` and is not in srmos yet; `say(line)` is told
    what was imported and what was kept. Raises ValueError (ImportFailed for bad files) with
    the reason; call `missing_files` first. Other files in the folders are left alone."""
    root = Path(root)
    expected = expected_files()
    for name, (folder, _) in SETS.items():
        _import_set(name, root, folder, expected, say)
    _import_calibration(root, say)
    for name, (folder, _) in SETS.items():
        for result in AUTHORS:
            files = _files(root, f"{folder}/results/{result.folder}", expected)
            _import_authors(name, result, files, say)


def _files(root, folder, expected):
    """(name, read) pairs of the study's files in `folder`, as `read_folder` gives them."""
    return [(n, (root / folder / n).read_bytes) for n in expected[folder]]


def _import_set(name, root, folder, expected, say):
    dataset = Dataset.objects.filter(name=name).first()
    if dataset is not None:
        say(f"dataset {name} exists ({dataset.images.count()} images): kept")
        return
    import_files(
        name,
        _files(root, f"{folder}/HR", expected),
        lr_files=_files(root, f"{folder}/LRx{SCALE}", expected),
        lr_scale=SCALE,
        description=f"{folder} at x{SCALE}, HR and LR as released with the SRGAN paper's "
        "results (Ledig et al. 2017)",
    )
    images = Dataset.objects.get(name=name).images.count()
    say(f"dataset {name}: {images} HR images and their LR x{SCALE} images imported")


def _import_calibration(root, say):
    dataset = Dataset.objects.filter(name=CALIBRATION_DATASET).first()
    if dataset is not None:
        say(f"dataset {CALIBRATION_DATASET} exists ({dataset.images.count()} images): kept")
        return
    files = [(p.name, p.read_bytes) for p in calibration_files(root)]
    report = import_files(
        CALIBRATION_DATASET,
        files,
        is_calibration=True,
        description="The first 20 BSD300 training images by name: raters see their nearest-"
        "neighbour (1) and HR (5) versions before rating, as in the SRGAN paper.",
    )
    say(f"dataset {CALIBRATION_DATASET}: {len(report.imported)} calibration images imported")


def _import_authors(dataset_name, result, files, say):
    dataset = Dataset.objects.get(name=dataset_name)
    have = ImportedResult.objects.filter(method__slug=result.slug, image__dataset=dataset).count()
    if have and have == dataset.images.count():
        say(f"{result.slug} results for {dataset_name} exist ({have}): kept")
        return
    report = import_results(dataset_name, result.slug, files, scale=SCALE, lr_input=LR_KERNEL)
    # A method made by this import is named as the paper names it; a researcher's own
    # wording, set in the admin, stays.
    Method.objects.filter(slug=result.slug, name=result.slug).update(
        name=result.title,
        description=f"{result.title} for Set5 and Set14, from the SRGAN authors' release; made "
        "from the release's LR images (Pillow's bicubic of the HR).",
    )
    say(f"{result.slug} results for {dataset_name}: {len(report.imported)} imported")
