"""The texture strips of docs/models.md: HR | bicubic | SRResNet-MSE | SRGAN-MSE, side by side.

    python docs/make_texture_crops.py [--data ../shared/data] [--out docs/img]
        [--method LABEL=CHECKPOINT.pt ...]

Each strip is a 96x96 HR crop shown at 2x (nearest), x4 from `matlab-bicubic` LR (the field's
degradation, as every table in docs/models.md): `degrade(hr, 4)`, then the method's `upscale`.
`--method` adds or replaces a column with any checkpoint (a training run's `last.pt` too), to
look at a network before shipping it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, no install

from sr_models.degrade import degrade, modcrop
from sr_models.io import read_rgb
from sr_models.methods import get_method, method_from_checkpoint

# (file under Set14 or Set5 HR, top row, left column) of each 96x96 HR crop.
CROPS = {
    "baboon": ("Set14/HR/baboon_HR.png", 40, 300),
    "zebra": ("Set14/HR/zebra_HR.png", 150, 180),
    "baby": ("Set5/HR/baby_HR.png", 40, 190),
}
SIDE, ZOOM, GAP = 96, 2, 8


def strip(hr: np.ndarray, outputs: list[np.ndarray], top: int, left: int) -> Image.Image:
    tiles = [im[top : top + SIDE, left : left + SIDE] for im in [hr, *outputs]]
    width = len(tiles) * SIDE * ZOOM + (len(tiles) - 1) * GAP
    canvas = Image.new("RGB", (width, SIDE * ZOOM), "white")
    for i, tile in enumerate(tiles):
        big = Image.fromarray(tile).resize((SIDE * ZOOM, SIDE * ZOOM), Image.Resampling.NEAREST)
        canvas.paste(big, (i * (SIDE * ZOOM + GAP), 0))
    return canvas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--method", action="append", default=[], metavar="LABEL=CHECKPOINT")
    args = parser.parse_args(argv)
    methods = {name: get_method(name, 4) for name in ("bicubic", "srresnet-mse", "srgan-mse")}
    for spec in args.method:
        label, _, path = spec.partition("=")
        if not path:
            parser.error(f"--method {spec!r}: expected LABEL=CHECKPOINT")
        methods[label] = method_from_checkpoint(path)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (rel, top, left) in CROPS.items():
        path = args.data / rel
        if not path.exists():
            print(f"{path} is missing: see ../shared/data/SOURCES.md", file=sys.stderr)
            return 2
        hr = modcrop(read_rgb(path), 4)
        lr = degrade(hr, 4)
        outputs = [m.upscale(lr) for m in methods.values()]
        out = args.out / f"sr_crop_{name}.png"
        strip(hr, outputs, top, left).save(out)
        print(f"{out}: HR | {' | '.join(methods)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
