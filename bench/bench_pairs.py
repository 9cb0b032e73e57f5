"""How many paired comparisons reach a given JOD accuracy: full design, random and active pairs.

Simulation on the SRGAN paper's nine BSD100 methods (one image, as ASAP's and pwcmp's examples
scale one scene). Generating model: an observer comparing two versions of an image perceives
each as its MOS plus independent noise of sd ``--noise-sd`` (0.55, the per-vote noise of
``study.analysis.simulate``'s "paper" profile) and picks the higher, so
:math:`P(a \\succ b) = \\Phi((MOS_a - MOS_b)/(0.55\\sqrt2))`: Thurstone Case V with true scores
:math:`q = MOS \\cdot 1.4826/(0.55\\sqrt2)` = 1.906 JOD per MOS point (NN 0 ... HR 6.39 JOD).

Designs: ``full`` (rounds of all 36 pairs, each round in random order), ``random`` (uniform pairs),
``active`` (one pair at a time: ``next_pairs`` greedy, the posterior updated after each vote) and
``active-mst`` (ASAP's batch: a maximum spanning tree of 8 pairs, then their votes). After every
``--step`` comparisons the votes so far are scaled with ``study.analysis.scaling.thurstone_scale``
(``--prior``, default the analysis default "normal"; "pwcmp" is pwcmp's own prior); the error is
the RMSE over the methods between estimated and true JOD, both centred on their mean. Averaged
over ``--reps`` seeded repetitions, "comparisons needed" is where the mean RMSE curve first falls
below ``--target`` (linear interpolation between checkpoints).

Then the cost of choosing the next pair at 12 methods x 100 images (a state holding 3,000
replayed votes): ``next_pairs(state, 1, seed, rater)`` repeated, median and p95, and ``update``.

    python bench/bench_pairs.py               # about 1.5 minutes on 2 cores
    python bench/bench_pairs.py --reps 5      # quicker

Prints figures; never asserted in tests. Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import os

# Tiny L-BFGS problems: OpenBLAS threads only contend (10x slower on a busy 2-core machine).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from study.analysis import active_sampling as act  # noqa: E402
from study.analysis.scaling import PRIORS, SIGMA, thurstone_scale  # noqa: E402
from study.analysis.simulate import PAPER_MOS  # noqa: E402

DESIGNS = ("full", "random", "active", "active-mst")


def true_jod(noise_sd: float) -> tuple[list[str], np.ndarray]:
    methods = list(PAPER_MOS["bsd100"])
    mos = np.array([PAPER_MOS["bsd100"][m] for m in methods])
    return methods, (mos - mos.min()) * SIGMA / (noise_sd * np.sqrt(2))


class Proposer:
    """The next pair of a design; active ones keep an ASAP state and see every outcome."""

    def __init__(self, design: str, methods: list[str], seed: int, prior_sd: float):
        self.design, self.rng, self.queue = design, np.random.default_rng(seed), []
        self.pairs = np.array(np.triu_indices(len(methods), 1)).T
        self.methods, self.seed = methods, seed
        self.state = act.new_state([("bsd100", "img")], methods, prior_sd=prior_sd)

    def next(self) -> tuple[int, int]:
        if not self.queue:
            if self.design == "full":
                self.queue = list(self.pairs[self.rng.permutation(len(self.pairs))])
            elif self.design == "random":
                self.queue = [self.pairs[self.rng.integers(len(self.pairs))]]
            else:
                mode = "greedy" if self.design == "active" else "mst"
                n = 1 if mode == "greedy" else len(self.methods) - 1
                props = act.next_pairs(self.state, n, seed=self.seed, mode=mode)
                idx = {m: k for k, m in enumerate(self.methods)}  # the state sorts its names
                pairs = zip(props.method_a, props.method_b, strict=True)
                self.queue = [(idx[a], idx[b]) for a, b in pairs]
        return tuple(self.queue.pop(0))

    def tell(self, winner: int, loser: int) -> None:
        if self.design.startswith("active"):
            w, lo = self.methods[winner], self.methods[loser]
            act.update(self.state, "sim", "bsd100", "img", w, lo, w)


def run(design: str, q: np.ndarray, methods, seed: int, checkpoints, args) -> np.ndarray:
    """RMSE (JOD, centred) at each checkpoint of one simulated study."""
    rng = np.random.default_rng([seed, 1])
    prop = Proposer(design, methods, seed, args.prior_sd)
    counts = np.zeros((len(q), len(q)))
    truth = q - q.mean()
    out, done = [], 0
    for stop in checkpoints:
        while done < stop:
            a, b = prop.next()
            a_wins = rng.random() < stats.norm.cdf((q[a] - q[b]) / SIGMA)
            w, lo = (a, b) if a_wins else (b, a)
            counts[w, lo] += 1
            prop.tell(w, lo)
            done += 1
        est = thurstone_scale(counts, prior=args.prior)
        out.append(np.sqrt(np.mean((est - est.mean() - truth) ** 2)))
    return np.array(out)


def needed(checkpoints: np.ndarray, curve: np.ndarray, target: float) -> float:
    below = np.flatnonzero(curve < target)
    if not len(below):
        return np.nan
    k = below[0]
    if k == 0:
        return float(checkpoints[0])
    x0, x1, y0, y1 = checkpoints[k - 1], checkpoints[k], curve[k - 1], curve[k]
    return float(x0 + (y0 - target) / (y0 - y1) * (x1 - x0))


def accuracy(args) -> None:
    methods, q = true_jod(args.noise_sd)
    checkpoints = np.arange(args.step, args.max + 1, args.step)
    print(
        f"BSD100, 9 methods, true JOD {', '.join(f'{m} {v:.2f}' for m, v in zip(methods, q, strict=True))}; "
        f"target mean RMSE < {args.target} JOD over {args.reps} repetitions",
        flush=True,
    )
    result = {}
    for design in args.designs:
        t0 = time.perf_counter()
        curves = [run(design, q, methods, s, checkpoints, args) for s in range(args.reps)]
        curves = np.array(curves)
        mean = curves.mean(axis=0)
        result[design] = needed(checkpoints, mean, args.target)
        marks = ", ".join(f"{c}: {mean[k]:.3f}" for k, c in enumerate(checkpoints) if c % 180 == 0)
        print(
            f"{design:>10}: {result[design]:7.0f} comparisons to RMSE < {args.target} "
            f"({time.perf_counter() - t0:.1f} s); mean RMSE at {marks}",
            flush=True,
        )
    for name in [d for d in ("active", "active-mst") if {d, "random", "full"} <= set(result)]:
        print(
            f"{name} / random = {result[name] / result['random']:.2f}, "
            f"{name} / full = {result[name] / result['full']:.2f}"
        )


def choosing(args) -> None:
    rng = np.random.default_rng(0)
    images = [("bsd100", f"img{k:03d}") for k in range(100)]
    methods = [f"method{k:02d}" for k in range(12)]
    q = rng.normal(0, 2, (100, 12))
    state = act.new_state(images, methods)
    t0 = time.perf_counter()
    for k in range(args.votes):
        r = f"rater{k % 30}"
        p = act.next_pairs(state, 1, seed=k, rater=r).iloc[0]
        i, a, b = state.image_index[(p.dataset, p.image)], p.method_a, p.method_b
        d = q[i, state.method_index[a]] - q[i, state.method_index[b]]
        act.update(
            state,
            r,
            p.dataset,
            p.image,
            a,
            b,
            "a" if rng.random() < stats.norm.cdf(d / SIGMA) else "b",
        )
    fill = time.perf_counter() - t0
    choose, upd = [], []
    for k in range(args.calls):
        t = time.perf_counter()
        p = act.next_pairs(state, 1, seed=k, rater=f"rater{k % 30}").iloc[0]
        choose.append(time.perf_counter() - t)
        t = time.perf_counter()
        act.update(state, f"rater{k % 30}", p.dataset, p.image, p.method_a, p.method_b, "a")
        upd.append(time.perf_counter() - t)
    ms = 1e3 * np.array(choose)
    print(
        f"12 methods x 100 images, {state.n_votes} votes: next_pairs median {np.median(ms):.2f} ms, "
        f"p95 {np.percentile(ms, 95):.2f} ms, max {ms.max():.2f} ms; update median "
        f"{1e3 * np.median(upd):.3f} ms; {args.votes} choose+update cycles took {fill:.1f} s "
        f"(load average {os.getloadavg()[0]:.1f})"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--target", type=float, default=0.2, help="mean RMSE to reach, JOD")
    p.add_argument("--step", type=int, default=36, help="comparisons between checkpoints")
    p.add_argument("--max", type=int, default=2160, help="comparisons per simulated study")
    p.add_argument("--prior", default="normal", choices=sorted(PRIORS), help="of the scaling")
    p.add_argument("--prior-sd", type=float, default=act.PRIOR_SD, help="active state, JOD")
    p.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=DESIGNS)
    p.add_argument("--noise-sd", type=float, default=0.55, help="perceptual noise, MOS units")
    p.add_argument("--votes", type=int, default=3000, help="votes in the timing state")
    p.add_argument("--calls", type=int, default=500, help="timed next_pairs calls")
    p.add_argument("--skip-accuracy", action="store_true")
    args = p.parse_args()
    if not args.skip_accuracy:
        accuracy(args)
    choosing(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
