"""Write the full analysis of a vote table to a directory of CSV, JSON and plots."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from . import plots
from .files import writes_whole
from .manifest import _excluded, _manifest
from .mos import summarize, with_general_interval
from .objective import method_ranking, objective_correlation, validate_objective
from .order import sort_rows
from .panel_report import (
    draw_metric_panel,
    panel_level,
    panel_metrics,
    panel_stimuli,
    write_metric_panel,
)
from .paper_tests import friedman, pairwise_tests
from .pilots import simulation
from .power import power_table
from .reliability import reliability_table
from .schema import VotesError, ratings, validate_votes
from .screening import _p913, mos_with_and_without, screen_raters
from .session_checks import retest_agreement
from .significance import crossed_tests
from .subject_model import p910_mle
from .sureal_io import write_sureal_json


def table2(
    mos: pd.DataFrame,
    objective: pd.DataFrame | None = None,
    method_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The SRGAN paper's Table 2 layout: rows (dataset, metric), one column per method.

    Metrics are ``psnr`` (dB, mean over the dataset's images; ``inf`` for the HR reference),
    ``ssim`` and ``mos``; methods in ``method_order`` when given, else in the paper's order as
    :func:`study.analysis.plots.method_order` recognises its names. PSNR/SSIM rows are empty
    without objective metrics. Values are rounded as the paper prints them (2, 4 and 2 decimals).
    """
    methods = plots.ordered(mos["method"].unique(), method_order)
    rows = []
    obj = None
    if objective is not None:
        obj = validate_objective(objective).groupby(["dataset", "method"])[["psnr", "ssim"]].mean()
    for ds in sorted(mos["dataset"].unique()):
        g = mos[mos["dataset"] == ds].set_index("method")["mos"]
        for metric, digits in (("psnr", 2), ("ssim", 4), ("mos", 2)):
            row = {"dataset": ds, "metric": metric}
            for m in methods:
                if metric == "mos":
                    val = g.get(m, np.nan)
                elif obj is not None and (ds, m) in obj.index:
                    val = obj.loc[(ds, m), metric]
                else:
                    val = np.nan
                row[m] = round(float(val), digits) if np.isfinite(val) else val
            rows.append(row)
    return pd.DataFrame(rows, columns=["dataset", "metric", *methods])


@writes_whole
def write_report(
    votes: pd.DataFrame,
    out_dir: str | Path,
    objective: pd.DataFrame | None = None,
    ci: str = "t",
    pairing: str = "rater_image",
    plots_enabled: bool = True,
    min_var: float = 0.1,
    method_order: Sequence[str] | None = None,
    downloads: bool = True,
    score_name: str = "mos",
    tables: dict | None = None,
    beside: Callable | None = None,
    figure_inputs: dict | None = None,
) -> dict[str, Path]:
    """Analyse ``votes`` and write every table and plot into ``out_dir``.

    Screening is reported, never applied silently: ``mos.csv`` uses every rating vote;
    ``mos_screened.csv`` shows MOS with and without the raters ``raters.csv`` flags.

    Parameters
    ----------
    votes : pandas.DataFrame
        Long vote table (see :func:`study.analysis.validate_votes`).
    out_dir : str or pathlib.Path
        Created if missing; files of the same name are overwritten.
    objective : pandas.DataFrame, optional
        ``dataset, image, method, psnr, ssim`` per stimulus (psnr may be inf for the reference).
    ci : {"t", "normal"}
        CI of the MOS tables (see :func:`study.analysis.mos_table`).
    pairing : {"rater_image", "rater", "none"}
        Pairing unit of the paper's Wilcoxon in ``significance_paper.csv``
        (``significance_by_rater.csv`` always uses "rater"). ``significance.csv`` is the
        primary test over raters and images (:func:`study.analysis.significance.crossed_tests`).
    plots_enabled : bool
        Draw the PNG/SVG figures (the slowest part on small studies).
    min_var : float
        Straight-lining threshold on a rater's score variance (P.808: 0.1-0.15); srmos passes
        the campaign's own, the value its live flags use.
    method_order : sequence of str, optional
        The order of the methods in every table and figure (srmos passes the paper's:
        interpolation, networks, imported results, HR); unlisted methods come after,
        alphabetically. Default: alphabetical tables, figures and ``table2.csv`` in the order
        :func:`study.analysis.plots.method_order` knows from the paper's method names.
    score_name : str
        The name of a method's mean in ``mos.csv`` and ``mos_per_stimulus.csv``: ``"mos"``, or
        ``"dmos"`` for degradation category ratings (scores of the impairment against a
        reference, ITU-T P.910).
    tables : dict, optional
        When given, every table is also put in it as a DataFrame under its file name, and the
        manifest as a dict under ``manifest.json``, so a caller (the live page) reads them in
        memory. With ``out_dir=None`` nothing is written to disk (no plots, no downloads).
    downloads : bool
        False leaves out the files only a download needs (``votes.csv``,
        ``significance_by_rater.csv``, ``dataset_sureal.json``), as a live report page does.
    beside : callable, optional
        ``beside(work, what)`` starts ``work`` (no arguments, a picklable result) elsewhere,
        say in a child process, and returns a function that waits for its result (and may have
        a ``cancel()``); the method comparisons and the metric panel's stimulus level are
        computed so while this call screens the raters (the live page's worker: both cores).
        Default: computed here; the tables are the same either way.
    figure_inputs : dict, optional
        Filled with what the figures are drawn from (the rating votes, ``mos``, the objective
        metrics, the per-stimulus MOS...), for :func:`draw_figures_of`.

    Returns
    -------
    dict of str to pathlib.Path
        File name -> path: ``votes.csv, mos.csv, mos_per_stimulus.csv, mos_screened.csv,
        significance.csv, significance_paper.csv, significance_by_rater.csv, friedman.csv,
        raters.csv, retest.csv, reliability.csv, subject_model.csv, correlation.csv,
        ranking.csv, table2.csv, power.csv, dataset_sureal.json, manifest.json`` (with
        ``verdicts``, ``simulated``, ``n_simulated_raters``, ``simulated_unknown_methods``;
        simulated votes add a note and ``SIMULATED - `` before every figure title) and the
        figures ``score_distribution``, ``mos_ci``,
        ``mos_vs_psnr`` (with objective metrics) as ``.png`` and ``.svg``.
    """
    v = validate_votes(votes)
    obj = validate_objective(objective) if objective is not None else None
    r = v[v["kind"] == "rating"].reset_index(drop=True)
    if r.empty:
        raise VotesError(
            f"no votes of kind rating (kinds present: {', '.join(sorted(v['kind'].unique()))})"
        )
    out = Path(out_dir) if out_dir is not None else None
    if out is None:
        plots_enabled = downloads = False
    else:
        out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    notes: list[str] = []
    # The 1-5 tables name a method's mean as the protocol does (MOS, or DMOS for DCR).
    named = {"mos.csv", "mos_per_stimulus.csv"}

    def put(name: str, df: pd.DataFrame) -> None:
        if name in named and score_name != "mos":
            df = df.rename(columns={"mos": score_name})
        if tables is not None:
            tables[name] = df
        if out is not None:
            files[name] = out / name
            df.to_csv(files[name], index=False)

    if downloads:
        put("votes.csv", v)
    notes += _duplicate_notes(v)
    order = list(method_order) if method_order else None
    sim = simulation(v)
    notes += sim["notes"]
    mos = _mos(r, ci, order, sim["unknown"])
    stim = summarize(r, ("dataset", "image", "method"), ci, order)
    put("mos.csv", mos)
    put("mos_per_stimulus.csv", stim)
    if figure_inputs is not None:
        figure_inputs.update(r=r, mos=mos, obj=obj, stim=stim, order=order, prefix=sim["prefix"])

    def comparisons():
        made = []
        verdicts = _write_comparisons(
            lambda *table: made.append(table), r, pairing, order, downloads, sim
        )
        return made, verdicts

    def metric_panel():
        made = []
        return made, write_metric_panel(lambda *table: made.append(table), stim, obj, downloads)

    # With a metric panel, the live page (no downloads) shows it instead of correlation.csv.
    panel = panel_metrics(obj)
    # Where the caller gives a way (``beside``), the method comparisons with reliability, and the
    # live page's metric panel at the stimulus level (its large fits), are computed in other
    # processes while this one screens the raters and judges the panel's methods: three parts
    # of similar size, whatever the design (one dataset or the paper's three).
    split_panel = beside is not None and bool(panel) and not downloads
    elsewhere = beside or _here
    later = [elsewhere(comparisons, "the method comparisons")]
    try:
        if split_panel:
            work = functools.partial(panel_stimuli, stim, obj, panel)
            later.append(elsewhere(work, "the metric panel's stimuli"))
            by_method = panel_level(stim, obj, panel, "method")
        else:  # (no panel: nothing worth a process)
            later.append((elsewhere if panel else _here)(metric_panel, "the metric panel"))
        raters, quality = _write_raters(put, v, r, ci, min_var, order)
        if not quality.attrs.get("converged", True):
            notes.append(_unconverged_note(quality.attrs["n_iter"]))
        notes += _write_objective(put, mos, stim, obj, order, correlation=downloads or not panel)
        (made, verdicts), judged = (part() for part in later)
    except BaseException:
        for part in later:  # a child computing the rest is stopped
            getattr(part, "cancel", lambda: None)()
        raise
    if split_panel:  # the two levels in the order one judgement gives them (stimuli first)
        by_stimulus, drawn = judged
        if figure_inputs is not None:  # the figure draws these fits, not fitted again
            figure_inputs["panel_scope"] = drawn
        judged = [("metric_panel.csv", pd.concat([by_stimulus, by_method], ignore_index=True))], []
    made_panel, sentences = judged
    for name, table in made + made_panel:
        put(name, table)
    if downloads:
        files["dataset_sureal.json"] = write_sureal_json(r, out / "dataset_sureal.json")
    if plots_enabled:
        files.update(_draw_plots(r, mos, obj, out, order, prefix=sim["prefix"]))
    manifest = _manifest(v, r, stim, raters, quality, ci, pairing, notes, min_var)
    manifest.update(
        simulated=sim["simulated"],
        n_simulated_raters=sim["n_raters"],
        simulated_unknown_methods=sorted(sim["unknown"]),
        verdicts=verdicts,
    )
    manifest["score_name"] = score_name
    if panel:
        manifest["metric_panel"] = sentences
    if tables is not None:
        tables["manifest.json"] = manifest
    if out is not None:
        files["manifest.json"] = out / "manifest.json"
        files["manifest.json"].write_text(json.dumps(manifest, indent=1, default=str))
    return files


def _mos(
    r: pd.DataFrame, ci: str, order: Sequence[str] | None, unknown: dict[str, str]
) -> pd.DataFrame:
    """``mos.csv``: the ITU interval and the one over raters and images, placeholder methods
    marked in ``note``."""
    mos = with_general_interval(summarize(r, ("dataset", "method"), ci, order), r)
    hit = mos["method"].isin(list(unknown))
    mos.loc[hit, "note"] = [
        "; ".join(x for x in (n, "simulated placeholder votes (no known profile)") if x)
        for n in mos.loc[hit, "note"]
    ]
    return mos


def _unconverged_note(n_iter: int) -> str:
    """The manifest's note when the P.910 subject model stops before converging."""
    return (
        f"The P.910 subject model did not converge within {n_iter} iterations, so its estimates "
        "(subject_model.csv and the mle_ columns of raters.csv) are approximate; "
        "MOS and every other table are unaffected."
    )


def _duplicate_notes(v: pd.DataFrame) -> list[str]:
    """A note when votes share rater, stimulus, kind and repeat (kept, as further repetitions)."""
    dup = int(v.duplicated(["rater", "dataset", "image", "method", "kind", "repeat"]).sum())
    if not dup:
        return []
    return [
        f"{dup} votes repeat another vote's rater, stimulus, kind and repeat index; "
        "they are analysed as further repetitions"
    ]


def _write_raters(
    put: Callable[[str, pd.DataFrame], None],
    v: pd.DataFrame,
    r: pd.DataFrame,
    ci: str,
    min_var: float = 0.1,
    method_order: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the rater tables: ``raters.csv, mos_screened.csv, retest.csv, subject_model.csv``.

    ``raters.csv`` carries the per-rater test-retest columns (with ``retest_distance_min,
    retest_distance_median``), ``retest.csv`` the overall row (with ``distance_min,
    distance_median``); the distances are NaN without a ``position`` column.

    Returns the screening table (with the P.910 rater columns) and the P.910 quality table.
    """
    p913, _ = _p913(r)
    retest_per_rater, retest_overall = retest_agreement(v)
    raters = screen_raters(v, min_var=min_var, p913=p913, retest=retest_per_rater)
    quality, mle_raters = p910_mle(r)
    raters = raters.merge(mle_raters.drop(columns="n_votes"), on="rater", how="left")
    put("raters.csv", raters)
    put(
        "mos_screened.csv",
        mos_with_and_without(r, _excluded(raters), ci=ci, method_order=method_order),
    )
    put("retest.csv", retest_overall)
    put("subject_model.csv", sort_rows(quality, ["dataset", "image", "method"], method_order))
    return raters, quality


def _write_comparisons(
    put: Callable[[str, pd.DataFrame], None],
    r: pd.DataFrame,
    pairing: str,
    method_order: Sequence[str] | None = None,
    by_rater: bool = True,
    sim: dict | None = None,
) -> list[str]:
    """Write the method comparisons and study-level statistics; returns the verdicts.

    ``significance.csv`` (the primary test, over raters and images), ``significance_paper.csv``
    (the paper's Wilcoxon with ``pairing``, raters and images fixed),
    ``significance_by_rater.csv`` (when ``by_rater``), ``friedman.csv, reliability.csv,
    power.csv``.
    """
    unknown = sim["unknown"] if sim else {}
    primary = crossed_tests(r, method_order=method_order, no_verdict=unknown)
    put("significance.csv", primary)
    put("significance_paper.csv", _paper_table(r, pairing, method_order, unknown))
    if by_rater:
        put("significance_by_rater.csv", _paper_table(r, "rater", method_order, unknown))
    # Friedman needs blocks, so the unpaired choice falls back to rater x image blocks.
    put("friedman.csv", friedman(r, pairing="rater_image" if pairing == "none" else pairing))
    put("reliability.csv", reliability_table(r))
    put("power.csv", power_table(r, pairs=primary))
    return primary["verdict"].tolist()


def _paper_table(
    r: pd.DataFrame, pairing: str, method_order: Sequence[str] | None, unknown: dict[str, str]
) -> pd.DataFrame:
    """The SRGAN paper's Wilcoxon (:func:`pairwise_tests`) with ``generalises_over`` saying
    what it takes as fixed; pairs with a placeholder method keep their p but are never called
    significant, and say why in ``note``."""
    t = pairwise_tests(r, pairing=pairing, method_order=method_order)
    fixed = {
        "rater_image": "neither: raters and images fixed (pairs share raters and images)",
        "rater": "raters (images fixed)",
        "none": "neither: votes taken as independent",
    }[pairing]
    t.insert(t.columns.get_loc("pairing") + 1, "generalises_over", fixed)
    for method, reason in unknown.items():
        hit = (t["method_a"] == method) | (t["method_b"] == method)
        t.loc[hit, "significant_holm"] = False
        t.loc[hit, "note"] = reason
    return t


def _write_objective(
    put: Callable[[str, pd.DataFrame], None],
    mos: pd.DataFrame,
    stim: pd.DataFrame,
    obj: pd.DataFrame | None,
    method_order: Sequence[str] | None = None,
    correlation: bool = True,
) -> list[str]:
    """Write ``correlation.csv`` (unless ``correlation`` is False), ``ranking.csv, table2.csv``;
    returns the notes for the manifest.

    Without objective metrics ``correlation.csv`` holds one row saying so; with them, a note says
    how many rated stimuli have no metrics, if any.
    """
    notes = []
    if obj is not None:
        if correlation:  # else the metric panel judges PSNR and SSIM with the other metrics
            put("correlation.csv", objective_correlation(stim, obj))
        unmatched = len(stim) - len(stim.merge(obj, on=["dataset", "image", "method"]))
        if unmatched:
            notes.append(f"{unmatched} rated stimuli have no objective metrics")
    else:
        put("correlation.csv", pd.DataFrame([{"note": "no objective metrics given (--objective)"}]))
    put("ranking.csv", method_ranking(mos, obj))
    put("table2.csv", table2(mos, obj, method_order))
    return notes


def draw_figures(
    votes: pd.DataFrame,
    out_dir: str | Path,
    objective: pd.DataFrame | None = None,
    ci: str = "t",
    method_order: Sequence[str] | None = None,
    formats: Sequence[str] = plots.FORMATS,
) -> dict[str, Path]:
    """Draw the figures of :func:`write_report` alone (a report page draws them apart from its
    tables): ``score_distribution``, ``mos_ci`` and, with objective metrics, ``mos_vs_psnr``,
    in each of ``formats`` ("png", "svg"). Returns file name -> path."""
    r = ratings(votes)
    obj = validate_objective(objective) if objective is not None else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sim = simulation(validate_votes(votes))
    mos = _mos(r, ci, method_order, sim["unknown"])
    return _draw_plots(r, mos, obj, out, method_order, tuple(formats), sim["prefix"])


def draw_figures_of(
    inputs: dict,
    out_dir: str | Path,
    formats: Sequence[str] = plots.FORMATS,
    beside: Callable | None = None,
) -> dict[str, Path]:
    """:func:`draw_figures` from what :func:`write_report` computed (its ``figure_inputs``),
    nothing computed again; the metric panel's figure ``beside`` the others where the caller
    gives a way (see :func:`write_report`). The same figures as :func:`draw_figures`'."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    r, mos, obj, stim = (inputs[k] for k in ("r", "mos", "obj", "stim"))
    return _draw_plots(
        *(r, mos, obj, out, inputs["order"], tuple(formats), inputs["prefix"], stim, beside),
        panel_scope=inputs.get("panel_scope"),
    )


def _here(work: Callable, what: str = "") -> Callable:
    """``work`` computed now, in this process: the default of ``beside``."""
    result = work()
    return lambda: result


def _draw_plots(
    r: pd.DataFrame,
    mos: pd.DataFrame,
    obj: pd.DataFrame | None,
    out: Path,
    method_order: Sequence[str] | None = None,
    formats: tuple[str, ...] = plots.FORMATS,
    prefix: str = "",
    stim: pd.DataFrame | None = None,
    beside: Callable | None = None,
    panel_scope=None,
) -> dict[str, Path]:
    """Draw the figures into ``out``; ``mos_vs_psnr`` only with objective metrics; ``prefix``
    before every title (``SIMULATED - `` for simulated votes); ``stim``: the per-stimulus MOS
    (computed here when not given); the metric panel's figure ``beside`` the others, from
    ``panel_scope`` where the tables judged it."""
    panel = None
    if obj is not None and panel_metrics(obj):
        if stim is None:
            stim = summarize(r, ("dataset", "image", "method"), "t", method_order)
        panel = (beside or _here)(
            functools.partial(draw_metric_panel, stim, obj, out, formats, prefix, panel_scope),
            "the metric panel's figure",
        )
    try:
        files = dict(plots.score_distribution(r, out, method_order, formats, prefix=prefix))
        files.update(plots.mos_ci(mos, out, method_order, formats, prefix=prefix))
        if obj is not None:
            files.update(plots.mos_vs_psnr(mos, obj, out, formats, prefix=prefix))
        if panel is not None:
            files.update(panel())
    except BaseException:
        getattr(panel, "cancel", lambda: None)()
        raise
    return files
