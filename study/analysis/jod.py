"""Scaling paired comparisons to JOD: Thurstone Case V (pwcmp) and Bradley-Terry.

Scores are in JOD (just-objectionable differences): conditions 1 JOD apart are told apart by 75%
of observers. Thurstone Case V: :math:`P(i \\succ j) = \\Phi((q_i - q_j)/\\sigma)` with
:math:`\\sigma = 1/\\Phi^{-1}(0.75) = 1.4826`, as pwcmp. Bradley-Terry:
:math:`P(i \\succ j) = 1/(1 + e^{-(s_i - s_j)})`, whose 75% point is :math:`\\ln 3`, so
:math:`s/\\ln 3` is on the same 1 JOD = 75% scale (the two links differ in the tails). Confidence
intervals and tests of differences generalise over raters *and* images: the resamples of raters
(as pwcmp's ``pw_scale_bootstrp`` resamples observers), of images and of comparisons are combined
so that each source of variance counts once (:func:`_spread`); pwcmp's observer bootstrap alone
treats the images as fixed, and called a third of equal pairs different on a null with a method
x image interaction (tests/test_analysis_jod_calibration.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .jod_bootstrap import _fit_block, _interval, _over, _spread, _tests
from .order import order_methods
from .pairwise import comparisons, per_unit_counts
from .scaling import MODELS, PRIORS, _note
from .schema import VotesError


def _scaled(v, model, prior, per_image, reference, n_boot, seed, method_order):
    """Per block: its key, methods, pooled counts, point scores, resampled scores and sizes."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    if prior not in PRIORS:
        raise ValueError(f"prior must be one of {', '.join(PRIORS)}, got {prior!r}")
    by = ["dataset", "image"] if per_image else ["dataset"]
    for key, g in v.groupby(by, sort=True):
        methods = order_methods(set(g["method_a"]) | set(g["method_b"]), method_order)
        if reference is not None and reference not in methods:
            raise VotesError(f"reference {reference!r} was not compared in {', '.join(key)}")
        ref = methods.index(reference) if reference is not None else 0
        per_rater, per_img = (per_unit_counts(g, methods, u)[1] for u in ("rater", "image"))
        total = per_rater.sum(axis=0)
        q, scores, sizes = _fit_block(per_rater, per_img, ref, (model, prior, n_boot, seed))
        info = {
            "n_raters": sizes["raters"],
            "n_images": sizes["images"],
            "over": _over(sizes["raters"], sizes["images"]),
            "note": _note(total.astype(float), model, prior),
        }
        yield dict(zip(by, key, strict=True)), methods, total, q, scores, sizes, info


def jod_table(
    votes: pd.DataFrame,
    model: str = "thurstone",
    prior: str = "normal",
    per_image: bool = False,
    reference: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    method_order: Sequence[str] | None = None,
    kinds: tuple[str, ...] = ("rating",),
) -> pd.DataFrame:
    """JOD score of every method per dataset (images pooled) or per image, with 95% CIs that
    generalise over raters and images.

    Parameters
    ----------
    votes : pandas.DataFrame
        Comparison votes (:func:`study.analysis.pairwise.validate_comparisons`).
    model : {"thurstone", "bradley_terry"}
        :func:`thurstone_scale` (pwcmp) or :func:`bradley_terry_scale` (logistic, in JOD).
    prior : {"normal", "pwcmp", "none"}
        Thurstone only (:func:`thurstone_scale`): a weak normal prior on distances (default),
        pwcmp's own distance prior, or plain likelihood.
    per_image : bool
        Scale each image on its own instead of pooling a dataset's images (pooling assumes the
        methods are equally far apart on every image).
    reference : str, optional
        The method fixed at 0 JOD (e.g. the HR image); default the first in ``method_order``.
    n_boot, seed
        Resamples of each kind (raters, images, comparisons; 0: no intervals) and their seed.

    Returns
    -------
    pandas.DataFrame
        ``dataset, [image,] method, jod, se`` (:func:`_spread`: raters and images both
        sampled), ``ci95_low, ci95_high`` (jod +- t(0.975, df) se), ``se_raters, se_images``
        (one-way bootstrap standard errors), ``df``, ``n`` (comparisons involving the method),
        ``n_raters, n_images, over`` (what the interval generalises over), ``model, prior,
        reference, n_boot`` and ``note`` (disconnected graph, unanimous pairs).

    References
    ----------
    Perez-Ortiz & Mantiuk (2017), arXiv:1712.03686; pwcmp's pw_scale_bootstrp.m; Bradley & Terry
    (1952); McCullagh (2000), Bernoulli 6; Owen (2007), Annals of Applied Statistics 1.
    """
    v = comparisons(votes, kinds)
    frames = []
    for key, methods, total, q, scores, sizes, info in _scaled(
        v, model, prior, per_image, reference, n_boot, seed, method_order
    ):
        spread = _spread(scores, np.eye(len(methods)), sizes, n_boot)
        frames.append(
            pd.DataFrame(
                {
                    **key,
                    "method": methods,
                    "jod": q,
                    "se": spread["se"],
                    **_interval(q, spread["se"], spread["df"]),
                    **spread,
                    "n": total.sum(axis=0) + total.sum(axis=1),
                    **info,
                    "model": model,
                    "prior": prior if model == "thurstone" else "none",
                    "reference": methods[methods.index(reference) if reference else 0],
                    "n_boot": n_boot,
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    by = ["dataset", "image"] if per_image else ["dataset"]
    cols = ["method", "jod", "se", "ci95_low", "ci95_high", "se_raters", "se_images", "df", "n"]
    info = ["n_raters", "n_images", "over", "model", "prior", "reference", "n_boot", "note"]
    return out[[*by, *cols, *info]]


def jod_differences(
    votes: pd.DataFrame,
    model: str = "thurstone",
    prior: str = "normal",
    per_image: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
    method_order: Sequence[str] | None = None,
    kinds: tuple[str, ...] = ("rating",),
) -> pd.DataFrame:
    """Is method a more or less preferred than method b, for other raters and other images?

    For each pair within a dataset (or image), the difference :math:`q_a - q_b` is recomputed on
    the resamples of :func:`jod_table`; its standard error combines the resamples of raters, of
    images and of comparisons (:func:`_spread`), so a method that wins on some images and loses
    on others is not called better because many raters saw the same images. Two-sided
    :math:`p = 2 T_{df}(-|d| / \\mathrm{se})`; Holm's correction runs over the pairs of each
    dataset (or image); ``verdict`` says it in a sentence (:func:`verdict`).

    Returns
    -------
    pandas.DataFrame
        ``dataset, [image,] method_a, method_b`` (a first in ``method_order``), ``jod_a, jod_b,
        diff`` (a minus b), ``se, ci95_low, ci95_high, se_raters, se_images, df, p, p_holm,
        significant_holm`` (p_holm < 0.05), ``n`` (direct comparisons of the pair), ``p_a``
        (share of them a won), ``over``, ``n_boot`` and ``verdict``.

    References
    ----------
    Efron & Tibshirani (1993), section 16.4 (bootstrap tests); McCullagh (2000); Owen (2007);
    Satterthwaite (1946); Holm (1979).
    """
    v = comparisons(votes, kinds)
    frames = []
    for key, methods, total, q, scores, sizes, info in _scaled(
        v, model, prior, per_image, None, n_boot, seed, method_order
    ):
        ia, ib = np.triu_indices(len(methods), 1)
        n = total[ia, ib] + total[ib, ia]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(n > 0, total[ia, ib] / n, np.nan)
        frames.append(
            pd.DataFrame(
                {
                    **key,
                    "method_a": np.asarray(methods)[ia],
                    "method_b": np.asarray(methods)[ib],
                    "jod_a": q[ia],
                    "jod_b": q[ib],
                    **_tests(q, ia, ib, scores, sizes, n_boot),
                    "n": n,
                    "p_a": share,
                    "over": info["over"],
                    "n_boot": n_boot,
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out["significant_holm"] = out["p_holm"] < 0.05
    out["verdict"] = verdicts(out)
    by = ["dataset", "image"] if per_image else ["dataset"]
    cols = ["jod_a", "jod_b", "diff", "se", "ci95_low", "ci95_high", "se_raters", "se_images"]
    cols += ["df", "p", "p_holm", "significant_holm", "n", "p_a", "over", "n_boot", "verdict"]
    return out[[*by, "method_a", "method_b", *cols]]


def _p_text(p: float) -> str:
    if not np.isfinite(p):
        return "p not computed"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.995 else "p = 1"


def verdict(row: Mapping, alpha: float = 0.05) -> str:
    """One sentence on one pair of :func:`jod_differences` (a row, or a mapping of its fields).

    The preferred method comes first (the difference and interval turned to match); the
    sentence names what the interval generalises over and that p is Holm-adjusted, e.g.
    "SRGAN is preferred to SRResNet (JOD 2.41 vs 1.57, difference 0.84, 95% CI 0.41 to 1.27,
    over raters and images; p = 0.002, Holm)" or "No significant difference between ...".
    """
    a, b, ja, jb = row["method_a"], row["method_b"], row["jod_a"], row["jod_b"]
    note = row.get("note")
    if isinstance(note, str) and note.startswith("no verdict"):
        return f"No verdict on {a} vs {b}: {note[len('no verdict: ') :]}"
    d, lo, hi = row["diff"], row["ci95_low"], row["ci95_high"]
    if d < 0:  # b preferred: state it from b's side
        a, b, ja, jb, d, lo, hi = b, a, jb, ja, -d, -hi, -lo
    where = f"{row['dataset']}, image {row['image']}: " if "image" in row else ""
    ci = f"95% CI {lo:.2f} to {hi:.2f}" if np.isfinite(lo) else "no interval"
    detail = f"JOD {ja:.2f} vs {jb:.2f}, difference {d:.2f}, {ci}, over {row['over']}; "
    detail += f"{_p_text(row['p_holm'])}, Holm"
    if row["p_holm"] < alpha:
        return f"{where}{a} is preferred to {b} ({detail})"
    return f"{where}No significant difference between {a} and {b} ({detail})"


def verdicts(differences: pd.DataFrame, alpha: float = 0.05) -> list[str]:
    """:func:`verdict` of every row of :func:`jod_differences`, prefixed by the dataset when
    there are several."""
    several = differences["dataset"].nunique() > 1 and "image" not in differences.columns
    out = []
    for row in differences.to_dict("records"):
        text = verdict(row, alpha)
        out.append(f"{row['dataset']}: {text}" if several else text)
    return out


def rank_correlation(x, y, seed: int = 0) -> tuple[float, float, str]:
    """Spearman's rho over methods and its two-sided p, with the method that gave p
    (:class:`.ranks.RankNull`: every order enumerated up to nine methods, so at n = 5 p cannot
    go below 2/120; seeded random orders beyond). The t approximation scipy reports is far too
    small on a handful of methods.

    Returns
    -------
    tuple
        ``(rho, p, method)``; NaN rho and p with fewer than three values or a constant one.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan, np.nan, "not computed (fewer than 3 methods, or a constant scale)"
    from .ranks import RankNull, rank_correlations  # scipy.stats: only when MOS meets JOD

    null = RankNull(y, seed)
    (rho, p), _ = rank_correlations(x, y, null)
    return rho, p, null.method


def mos_vs_jod(mos: pd.DataFrame, jod: pd.DataFrame) -> pd.DataFrame:
    """MOS (from ACR votes) against JOD (from comparisons) for each (dataset, method) in both.

    ``mos`` is :func:`study.analysis.mos_table` output, ``jod`` is dataset-level
    :func:`jod_table` output. The Spearman correlation is computed within each dataset (NaN with
    fewer than three methods): the two scales share no unit, only an order. Its p is a
    permutation p (:func:`rank_correlation`): exact up to nine methods.

    Returns
    -------
    pandas.DataFrame
        ``dataset, method, mos, mos_ci95_low, mos_ci95_high, jod, jod_ci95_low, jod_ci95_high``,
        then per dataset (repeated on its rows) ``n_methods, spearman_rho, spearman_p,
        spearman_p_method``.
    """
    if "image" in jod.columns:
        raise VotesError("jod table is per image: pass the dataset-level jod_table")
    cols, parts = ["dataset", "method"], []
    for name, t in (("mos", mos), ("jod", jod)):
        missing = [c for c in (*cols, name, "ci95_low", "ci95_high") if c not in t.columns]
        if missing:
            raise VotesError(f"{name} table lacks column(s) {', '.join(missing)}")
        ci = {"ci95_low": f"{name}_ci95_low", "ci95_high": f"{name}_ci95_high"}
        t = t[[*cols, name, "ci95_low", "ci95_high"]].rename(columns=ci)
        parts.append(t.astype({"dataset": str, "method": str}))
    out = parts[0].merge(parts[1], on=cols)  # in the MOS table's order
    if out.empty:
        raise VotesError("no (dataset, method) has both a MOS and a JOD")
    rho = {ds: (len(g), *rank_correlation(g["mos"], g["jod"])) for ds, g in out.groupby("dataset")}
    stat = pd.DataFrame.from_dict(
        rho,
        orient="index",
        columns=["n_methods", "spearman_rho", "spearman_p", "spearman_p_method"],
    )
    return out.join(stat, on="dataset")
