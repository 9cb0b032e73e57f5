"""Are JOD differences calibrated? False positives on simulated nulls, and power.

Simulated paired-comparison studies (``study.analysis.simulate_pc``): Thurstone Case V
observers, three methods, with method x image and method x rater interactions of the given
spreads (JOD). On nulls (all methods equal) a calibrated test calls about 5% of pairs different at
p < 0.05; the columns compare ``jod_differences`` (raters and images), the raters' resamples
alone (pwcmp's bootstrap, images fixed: the test before) and Owen's pigeonhole bootstrap (raters
and images resampled at once). Then the power on 0.3 JOD steps.

    python bench/bench_pc_calibration.py              # about a minute on 2 cores
    python bench/bench_pc_calibration.py --reps 100   # quicker

Prints figures; never asserted in tests (tests/test_analysis_jod_calibration.py asserts ranges).
Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import os

# Tiny solves: OpenBLAS threads only contend on a busy 2-core machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from study.analysis import jod_bootstrap, scaling  # noqa: E402
from study.analysis.simulate_pc import rejection_rates, simulate_arrays  # noqa: E402

# (raters, images, comparisons per rater or None: full design, image_sd, rater_sd)
DESIGNS = [
    (10, 20, None, 0.0, 0.0),
    (20, 50, None, 0.0, 0.0),
    (10, 20, None, 1.0, 0.5),
    (20, 40, None, 0.5, 0.25),
    (26, 40, None, 1.0, 0.0),
    (40, 100, 30, 0.5, 0.25),
    (10, 100, 30, 0.0, 1.0),
]


def pigeonhole_rate(raters, images, per_rater, image_sd, rater_sd, reps, n_boot) -> float:
    """Share of null pair tests at p < 0.05 with Owen's pigeonhole bootstrap standard error."""
    hits = []
    for rep in range(reps):
        rng = np.random.default_rng([0, rep])
        s = simulate_arrays(np.zeros(3), raters, images, per_rater, image_sd, rater_sd, rng)
        win = np.where(s["a_won"], s["a"], s["b"])
        lose = np.where(s["a_won"], s["b"], s["a"])
        cell = np.zeros((raters, images, 3, 3))
        np.add.at(cell, (s["rater"], s["image"], win, lose), 1)
        q = scaling.thurstone_scale(cell.sum(axis=(0, 1)))
        w = np.random.default_rng(rep)
        wr = w.multinomial(raters, np.full(raters, 1 / raters), n_boot)
        wk = w.multinomial(images, np.full(images, 1 / images), n_boot)
        c = np.einsum("br,bk,rkij->bij", wr, wk, cell)
        boot = jod_bootstrap._fit_batch(c, ("thurstone", "normal", 0), q, True)
        ia, ib = np.triu_indices(3, 1)
        se = (boot[:, ia] - boot[:, ib]).std(axis=0, ddof=1)
        hits.append(2 * stats.norm.sf(np.abs(q[ia] - q[ib]) / se) < 0.05)
    return float(np.mean(hits))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=300)
    p.add_argument("--n-boot", type=int, default=200)
    a = p.parse_args()
    start = time.perf_counter()
    print(f"nulls, 3 methods, {a.reps} replicates, {a.n_boot} resamples of each kind")
    print("| raters | images | per rater | image x method sd | rater x method sd | "
          "p < 0.05 (raters and images) | any pair, Holm | raters only | pigeonhole |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for d in DESIGNS:
        r = rejection_rates(np.zeros(3), *d, reps=a.reps, n_boot=a.n_boot)
        pig = pigeonhole_rate(*d, a.reps, a.n_boot)
        per = "all pairs" if d[2] is None else d[2]
        print(f"| {d[0]} | {d[1]} | {per} | {d[3]} | {d[4]} | {r['rate']:.3f} | "
              f"{r['any_holm']:.3f} | {r['rate_raters_only']:.3f} | {pig:.3f} |", flush=True)  # fmt: skip
    print("\npower, quality 0 / 0.3 / 0.6 JOD, all pairs of every image")
    print("| raters | images | image x method sd | rater x method sd | 0.3 JOD apart | "
          "0.6 JOD apart | any pair, Holm |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for raters, images, isd, rsd in [(20, 40, 0.5, 0.25), (26, 100, 0.5, 0.25), (10, 20, 1.0, 0.5)]:
        r = rejection_rates([0.0, 0.3, 0.6], raters, images, None, isd, rsd, a.reps, a.n_boot)
        small = (r["pairs"][0] + r["pairs"][2]) / 2
        print(f"| {raters} | {images} | {isd} | {rsd} | {small:.2f} | {r['pairs'][1]:.2f} | "
              f"{r['any_holm']:.2f} |", flush=True)  # fmt: skip
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
