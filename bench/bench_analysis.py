"""Wall time and peak memory of the full analysis report (``write_report``).

Two campaigns of simulated paper-profile raters on the SRGAN paper's design (1,128 stimuli):
the paper's size (26 raters x 1,128 votes = 29,328 votes) and about 1,000,000 votes
(887 raters). Each case runs in a fresh process so peak RSS is its own.

    python bench/bench_analysis.py            # both cases
    python bench/bench_analysis.py --votes 29328

Prints one line per case; never asserted in tests. Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {"paper": 26, "million": 887}


def run_case(n_raters: int, plots: bool) -> None:
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from study.analysis import paper_design, simulate_votes, write_report

    design = paper_design()
    votes = simulate_votes(design, n_raters=n_raters, seed=0, retest=10)
    obj = design.copy()
    rng = np.random.default_rng(0)
    obj["psnr"] = np.where(obj["method"] == "hr", np.inf, rng.normal(27, 2, len(obj)))
    obj["ssim"] = np.where(obj["method"] == "hr", 1.0, rng.uniform(0.6, 0.9, len(obj)))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # First call in a fresh process (pays the matplotlib/scipy imports), then a warm call as in a
    # long-running worker.
    for label in ("cold", "warm"):
        with tempfile.TemporaryDirectory() as out:
            t0, c0 = time.perf_counter(), time.process_time()
            files = write_report(votes, out, objective=obj, plots_enabled=plots)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(
            f"{n_raters} raters, {len(votes):,} votes, {len(files)} files, plots={plots}, "
            f"{label}: {wall:.2f} s wall, {cpu:.2f} s CPU, peak RSS {peak / 1024:.0f} MiB "
            f"(votes alone {base / 1024:.0f} MiB), load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--case", choices=sorted(CASES), action="append")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        run_case(a.child, not a.no_plots)
        return 0
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}"
    )
    for case in a.case or list(CASES):
        cmd = [sys.executable, __file__, "--child", str(CASES[case])]
        if a.no_plots:
            cmd.append("--no-plots")
        subprocess.run(cmd, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
