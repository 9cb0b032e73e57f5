"""False-positive rate and power of significance.csv's test against the SRGAN paper's Wilcoxon.

Part 1, calibration: null studies (two methods with the same expected vote; discrete 1-5 votes
with rater bias, image effects, method x image and method x rater interactions, unequal rater
noise and missing votes, ``study.analysis.simulate.null_scores``). Per design, the share of
replicates each test calls significant at 5%: the crossed test of ``significance.csv`` (raters
and images random), the paper's Wilcoxon over rater x image pairs (``significance_paper.csv``)
and the Wilcoxon over per-rater means (``significance_by_rater.csv``).

Part 2, power on the paper's profile: 26 simulated raters on the BSD100 design (9 methods x
100 images, ``simulate_votes`` around the paper's MOS) with interactions none / moderate /
large; the share of replicates in which each test, Holm-adjusted over the 36 pairs, finds the
difference for SRGAN-VGG54 vs SRResNet-MSE (MOS 3.56 vs 2.29) and two closer pairs
(SRResNet-MSE vs DRCN, 2.29 vs 2.12; DRCN vs ESPCN, 2.12 vs 2.01).

    python bench/bench_calibration.py [--replicates 200] [--seed 0]

Prints Markdown tables (for docs/benchmarks.md); never asserted in tests (the calibration is,
in tests/test_analysis_calibration.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from study.analysis import paper_design, simulate_votes  # noqa: E402
from study.analysis.crossed import crossed_mean, t_test  # noqa: E402
from study.analysis.null_studies import null_scores  # noqa: E402
from study.analysis.paper_tests import pairwise_tests, signed_rank_test  # noqa: E402
from study.analysis.schema import ratings  # noqa: E402
from study.analysis.significance import crossed_tests  # noqa: E402

# raters, images, method x image sd, method x rater sd, missing, rater noise spread
DESIGNS = [
    (10, 20, 0.0, 0.0, 0.1, 0.0),
    (26, 100, 0.0, 0.0, 0.0, 0.3),
    (10, 100, 0.15, 0.15, 0.1, 0.0),
    (26, 100, 0.15, 0.15, 0.1, 0.0),
    (26, 100, 0.3, 0.3, 0.1, 0.3),
    (40, 20, 0.5, 0.5, 0.2, 0.0),
    (10, 20, 0.6, 0.2, 0.2, 0.3),
    (40, 100, 0.1, 0.5, 0.05, 0.0),
]
INTERACTIONS = {"none": 0.0, "small (0.15)": 0.15, "moderate (0.3)": 0.3, "large (0.5)": 0.5}
PAIRS = [
    ("srgan-vgg54", "srresnet-mse"),
    ("srresnet-mse", "drcn"),
    ("drcn", "espcn"),
]


def wilcoxon_p(d: np.ndarray) -> float:
    d = d[~np.isnan(d)]
    return signed_rank_test(d)[1] if np.any(d != 0) else np.nan


def calibration(replicates: int, seed: int) -> None:
    print(f"\n### False-positive rate at 5% on null studies ({replicates} replicates per design)\n")
    print("| raters | images | method x image sd | method x rater sd | missing | rater noise "
          "spread | crossed t (significance.csv) | Wilcoxon rater x image (paper) | "
          "Wilcoxon per rater |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for k, (r, i, mi, mr, missing, spread) in enumerate(DESIGNS):
        s = null_scores(r, i, replicates, method_image_sd=mi, method_rater_sd=mr,
                        missing=missing, rater_noise_spread=spread, seed=seed + k)  # fmt: skip
        d = s[..., 0] - s[..., 1]
        crossed = np.mean(t_test(crossed_mean(d))["p"] < 0.05)
        paper = np.mean([wilcoxon_p(x.ravel()) < 0.05 for x in d])
        with np.errstate(invalid="ignore"):
            per_rater = np.nanmean(s[..., 0], axis=2) - np.nanmean(s[..., 1], axis=2)
        by_rater = np.mean([wilcoxon_p(x) < 0.05 for x in per_rater])
        print(f"| {r} | {i} | {mi} | {mr} | {missing} | {spread} | {crossed:.3f} | "
              f"{paper:.3f} | {by_rater:.3f} |")  # fmt: skip


def power(replicates: int, seed: int) -> None:
    design = paper_design()
    design = design[design["dataset"] == "BSD100"]
    print(f"\n### Power on the paper's profile (BSD100, 26 raters, 9 methods x 100 images, "
          f"Holm over 36 pairs, {replicates} replicates)\n")  # fmt: skip
    head = " | ".join(f"{a} vs {b}: crossed / paper" for a, b in PAIRS)
    print(f"| interactions (sd of each) | {head} |")
    print("|---|" + "---|" * len(PAIRS))
    for label, sd in INTERACTIONS.items():
        hits = np.zeros((len(PAIRS), 2))
        for k in range(replicates):
            v = simulate_votes(design, n_raters=26, seed=seed + k, bad_raters=0,
                               method_image_sd=sd, method_rater_sd=sd)  # fmt: skip
            r = ratings(v)
            for j, table in enumerate((crossed_tests(r), pairwise_tests(r))):
                sig = table.set_index(["method_a", "method_b"])["significant_holm"]
                for p, (a, b) in enumerate(PAIRS):
                    hits[p, j] += bool(sig.get((a, b), sig.get((b, a))))
        cells = " | ".join(f"{c / replicates:.2f} / {w / replicates:.2f}" for c, w in hits)
        print(f"| {label} | {cells} |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--replicates", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-power", action="store_true", help="calibration only")
    a = p.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    t0 = time.perf_counter()
    calibration(a.replicates, a.seed)
    t1 = time.perf_counter()
    if not a.no_power:
        power(a.replicates, a.seed)
    print(f"\ncalibration {t1 - t0:.1f} s, power {time.perf_counter() - t1:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
