"""The command lines researchers script with: degrade -> upscale -> evaluate, and their errors."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sr_models.io import write_png
from tests.conftest import run_python

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    return run_python("-m", *args, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)


@pytest.fixture
def hr_dir(tmp_path):
    folder = tmp_path / "HR"
    folder.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64]
    for name in ("bird", "birdie"):  # "birdie_*" must not match "bird"
        img = 127 + 90 * np.sin(
            rng.uniform(0.1, 0.5) * xx[..., None] + 0.2 * yy[..., None] + np.arange(3)
        )
        write_png(folder / f"{name}_HR.png", img.astype(np.uint8))
    return folder


def test_it_degrades_upscales_and_evaluates_a_folder(tmp_path, hr_dir):
    lr_dir, sr_dir = tmp_path / "LR", tmp_path / "SR"
    out = run(
        "sr_models.degrade",
        "--kernel",
        "matlab-bicubic",
        "--scale",
        "4",
        "--in-dir",
        str(hr_dir),
        "--out-dir",
        str(lr_dir),
    )
    assert out.returncode == 0, out.stderr
    assert Image.open(lr_dir / "bird_HR.png").size == (16, 12)
    out = run(
        "sr_models.upscale",
        "--method",
        "bicubic",
        "--scale",
        "4",
        "--in-dir",
        str(lr_dir),
        "--out-dir",
        str(sr_dir),
    )
    assert out.returncode == 0, out.stderr
    (sr_dir / "bird_HR.png").rename(sr_dir / "bird_SRGAN-VGG54.png")
    out = run(
        "sr_models.evaluate",
        "--hr-dir",
        str(hr_dir),
        "--sr-dir",
        str(sr_dir),
        "--scale",
        "4",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert [r["name"] for r in report["images"]] == ["bird", "birdie"]
    assert 15 < report["mean"]["psnr"] < 60 and 0 < report["mean"]["ssim"] <= 1
    assert report["mean"]["psnr"] == pytest.approx(np.mean([r["psnr"] for r in report["images"]]))


def test_it_reports_unmatched_and_mismatched_files_by_name(tmp_path, hr_dir):
    sr_dir = tmp_path / "SR"
    sr_dir.mkdir()
    write_png(sr_dir / "bird_x4.png", np.zeros((40, 64, 3), dtype=np.uint8))
    write_png(sr_dir / "zebra.png", np.zeros((48, 64, 3), dtype=np.uint8))
    out = run("sr_models.evaluate", "--hr-dir", str(hr_dir), "--sr-dir", str(sr_dir))
    assert out.returncode == 1
    assert "bird_x4.png: size 64x40 differs from bird_HR.png 64x48" in out.stderr
    assert "zebra.png: matches no HR image" in out.stderr
    assert "birdie_HR.png: no SR image matches" in out.stderr


def test_it_refuses_a_grey_image_in_one_line_naming_the_file(tmp_path):
    lr_dir = tmp_path / "LR"
    lr_dir.mkdir()
    Image.new("L", (8, 8)).save(lr_dir / "grey.png")
    out = run(
        "sr_models.upscale",
        "--method",
        "nearest",
        "--scale",
        "4",
        "--in-dir",
        str(lr_dir),
        "--out-dir",
        str(tmp_path / "SR"),
    )
    assert out.returncode != 0
    assert out.stderr.count("\n") == 1 and "grey.png" in out.stderr and "--convert" in out.stderr
    out = run(
        "sr_models.upscale",
        "--method",
        "nearest",
        "--scale",
        "4",
        "--convert",
        "--in-dir",
        str(lr_dir),
        "--out-dir",
        str(tmp_path / "SR"),
    )
    assert out.returncode == 0 and Image.open(tmp_path / "SR" / "grey.png").size == (32, 32)


def test_it_refuses_a_wrong_scale_and_a_foreign_checkpoint(tmp_path, hr_dir):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    out = run(
        "sr_models.upscale",
        "--checkpoint",
        str(bad),
        "--scale",
        "4",
        "--in-dir",
        str(hr_dir),
        "--out-dir",
        str(tmp_path / "SR"),
    )
    assert out.returncode != 0 and "bad.pt" in out.stderr and out.stderr.count("\n") == 1
    out = run(
        "sr_models.degrade",
        "--scale",
        "5",
        "--in-dir",
        str(hr_dir),
        "--out-dir",
        str(tmp_path / "LR"),
    )
    assert out.returncode != 0 and "bird_HR.png" in out.stderr and "--modcrop" in out.stderr
