"""The paired-comparison report against the ratings report, as a researcher runs them:
``python -m study.analysis`` in a fresh process each time (imports included), alternating, so
both figures of a row come from the same minutes of the same machine.

- ACR: the SRGAN paper's BSD100 design, 26 simulated paper-profile raters x 9 methods x 100
  images (23,400 votes), figures included;
- paired: the same nine methods at their paper qualities (``simulate_comparisons``, image and
  rater interactions of a simulated pilot), 26 raters x 300 comparisons (7,800), with figures
  and with ``--no-plots``.

Then, in one warm process, the crossed significance test (``significance.csv``) against the
whole ratings report it is part of (the paper-size report budget).

    python bench/bench_pc_report.py [--repeat 3]

Prints figures; never asserted in tests. Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def data(folder: Path) -> dict[str, Path]:
    from study.analysis import paper_design, simulate_votes
    from study.analysis.simulate import PAPER_MOS
    from study.analysis.simulate_pc import (
        PILOT_IMAGE_SD,
        PILOT_RATER_SD,
        paper_quality,
        simulate_comparisons,
    )

    design = paper_design()
    design = design[design["dataset"].str.lower() == "bsd100"]
    simulate_votes(design, n_raters=26, seed=0).to_csv(folder / "acr.csv", index=False)
    quality = {m: paper_quality("bsd100", m) for m in PAPER_MOS["bsd100"]}
    pc = simulate_comparisons(
        quality, 26, 100, 300, PILOT_IMAGE_SD, PILOT_RATER_SD, seed=0, dataset="bsd100"
    )
    pc.to_csv(folder / "pc.csv", index=False)
    return {"acr": folder / "acr.csv", "pc": folder / "pc.csv"}


def run(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one ``python -m study.analysis`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "study.analysis", *args], cwd=ROOT, check=True, capture_output=True
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def crossed_share(acr: Path) -> str:
    import pandas as pd

    from study.analysis import write_report
    from study.analysis.significance import crossed_tests

    votes = pd.read_csv(acr)
    with tempfile.TemporaryDirectory() as out:
        write_report(votes, out)  # warm: imports and first calls
        t0 = time.process_time()
        write_report(votes, out)
        whole = time.process_time() - t0
    t0 = time.process_time()
    crossed_tests(votes)
    crossed = time.process_time() - t0
    return (
        f"crossed significance test (significance.csv) {1e3 * crossed:.0f} ms of CPU inside the "
        f"ratings report's {whole:.2f} s (warm process, figures included)"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = data(folder)
        cases = {
            "ACR, 23,400 votes, figures": ["--votes", str(files["acr"])],
            "paired, 7,800 comparisons, figures": ["--comparisons", str(files["pc"])],
            "paired, 7,800 comparisons, --no-plots": [
                *("--comparisons", str(files["pc"]), "--no-plots"),
            ],
        }
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
        loads = []
        for k in range(a.repeat):
            loads.append(os.getloadavg()[0])
            for label, args in cases.items():
                times[label].append(run([*args, "--out", str(folder / f"out-{k}")]))
        print(
            f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}, load average "
            f"{min(loads):.1f}-{max(loads):.1f} (uptime before each round), {a.repeat} rounds"
        )
        acr = times["ACR, 23,400 votes, figures"]
        acr_wall = statistics.median(w for w, _ in acr)
        acr_cpu = statistics.median(c for _, c in acr)
        for label, runs in times.items():
            wall = statistics.median(w for w, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            each = ", ".join(f"{w:.2f}" for w, _ in runs)
            print(
                f"{label:>40}: {wall:.2f} s wall ({each}), {cpu:.2f} s CPU; "
                f"{wall / acr_wall:.2f}x / {cpu / acr_cpu:.2f}x the ACR report (wall / CPU)"
            )
        print(crossed_share(files["acr"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
