"""The report of a paired-comparison study: JOD scales, their differences, rater consistency and
agreement, and MOS against JOD where the same methods were also rated (ACR).

``write_comparison_report(votes, out_dir)`` takes the comparison long format
(:func:`.pairwise.validate_comparisons`) and writes CSV files and a manifest, as
:func:`.report.write_report` does for ratings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from . import plots
from .consistency import agreement, rater_consistency
from .files import writes_whole
from .jod import jod_differences, jod_table, mos_vs_jod, verdict, verdicts
from .pairwise import trusting
from .simulate import known_profile

REPORT_VERSION = "srmos-comparisons-2"  # 2: intervals over raters and images, verdicts


@writes_whole
def write_comparison_report(
    votes: pd.DataFrame,
    out_dir: str | Path,
    method_order: Sequence[str] | None = None,
    mos: pd.DataFrame | None = None,
    downloads: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
    plots_enabled: bool = True,
    tables: dict | None = None,
) -> dict[str, Path]:
    """Analyse comparison ``votes`` and write the report's files into ``out_dir``.

    Files: ``comparisons.csv`` (the validated votes; with ``downloads``), ``jod.csv``
    (Thurstone Case V scale per dataset, 1 JOD = 75% preference, bootstrap CIs over raters),
    ``jod_bt.csv`` (Bradley-Terry in JOD units, the same data), ``jod_differences.csv``
    (every pair of methods: difference, CI, p, Holm), ``rater_consistency.csv`` (circular
    triads, Kendall's zeta), ``agreement.csv`` (Kendall's u), ``mos_vs_jod.csv`` (with
    ``mos``, a :func:`.mos.mos_table` of ACR votes), ``manifest.json`` (with ``verdicts``, one
    sentence per pair, and ``simulated``) and, with ``plots_enabled``, the figure ``jod_ci``
    (PNG and SVG; titled "SIMULATED" when any rater is).
    """
    with trusting(votes) as v:
        return _write(v, out_dir, method_order, mos, downloads, n_boot, seed, plots_enabled, tables)


def _write(v, out_dir, method_order, mos, downloads, n_boot, seed, plots_enabled, tables):
    # With `tables`, every table also goes in it (and the manifest as a dict) for a caller that
    # reads them in memory; with out_dir=None nothing is written (no plots, no downloads).
    out = Path(out_dir) if out_dir is not None else None
    if out is None:
        plots_enabled = downloads = False
    else:
        out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def put(name: str, df: pd.DataFrame) -> None:
        if tables is not None:
            tables[name] = df
        if out is not None:
            files[name] = out / name
            df.to_csv(files[name], index=False)

    if downloads:
        put("comparisons.csv", v)
    order = list(method_order) if method_order else None
    jod = jod_table(v, n_boot=n_boot, seed=seed, method_order=order)
    put("jod.csv", jod)
    n_sim = _simulated(v)
    if plots_enabled:
        # plots.jod_ci titles each panel by its dataset: prefixing the label marks every panel.
        shown = jod.assign(dataset="SIMULATED " + jod["dataset"].astype(str)) if n_sim else jod
        files.update(plots.jod_ci(shown, out, order))
    put("jod_bt.csv", jod_table(v, model="bradley_terry", n_boot=0, method_order=order))
    diffs = _without_placeholders(
        jod_differences(v, n_boot=n_boot, seed=seed, method_order=order), v
    )
    put("jod_differences.csv", diffs)
    put("rater_consistency.csv", rater_consistency(v))
    put("agreement.csv", agreement(v))
    if mos is not None and len(mos):
        put("mos_vs_jod.csv", mos_vs_jod(mos, jod))
    manifest = {
        "report_version": REPORT_VERSION,
        "protocol": "paired comparison (forced choice)",
        "n_comparisons": int(len(v)),
        "n_raters": int(v["rater"].nunique()),
        # Simulated sessions (a pilot) are analysed with the rest, and counted here.
        "n_simulated_raters": n_sim,
        "simulated": bool(n_sim),
        "simulated_note": _simulated_note(n_sim, int(v["rater"].nunique())),
        "scale": "Thurstone Case V, 1 JOD = 75% preference (pwcmp convention), "
        "reference method at 0",
        "intervals": "95% t intervals that generalise over raters and images (resamples of "
        "raters, images and comparisons combined; Satterthwaite df); p Holm-adjusted per dataset",
        "n_boot": n_boot,
        "verdicts": verdicts(diffs),
    }
    if tables is not None:
        tables["manifest.json"] = manifest
    if out is not None:
        files["manifest.json"] = out / "manifest.json"
        files["manifest.json"].write_text(json.dumps(manifest, indent=1, default=str))
    return files


def _without_placeholders(diffs: pd.DataFrame, v: pd.DataFrame) -> pd.DataFrame:
    """No verdict on a method whose simulated choices are placeholders (the simulator knows no
    profile for it, so simulated raters choose it by a coin): its pairs keep their numbers but
    lose p and the verdict, with the reason in ``note``."""
    if not _simulated(v) or diffs.empty:
        return diffs
    sim = v["rater_platform"] == "simulated"
    shown = pd.concat([v.loc[sim, "method_a"], v.loc[sim, "method_b"]]).astype(str).unique()
    unknown = {m for m in shown if not known_profile(m)}
    hit = diffs["method_a"].astype(str).isin(unknown) | diffs["method_b"].astype(str).isin(unknown)
    if not hit.any():
        return diffs
    out = diffs.copy()
    out.loc[hit, ["p", "p_holm"]] = np.nan
    out.loc[hit, "significant_holm"] = False
    reason = "no verdict: simulated without a known profile (placeholder choices)"
    out["note"] = out["note"].astype(object) if "note" in out.columns else ""
    out.loc[hit, "note"] = reason
    out["verdict"] = [verdict(row) for row in out.to_dict("records")]
    return out


def _simulated(v: pd.DataFrame) -> int:
    """Raters of simulated sessions (srmos exports and :mod:`.simulate_pc` say so in
    ``rater_platform``)."""
    if "rater_platform" not in v.columns:
        return 0
    return int(v.loc[v["rater_platform"] == "simulated", "rater"].nunique())


def _simulated_note(n_simulated: int, n_raters: int) -> str:
    """The sentence a reader of a pilot's report must not miss (empty for real raters only)."""
    if not n_simulated:
        return ""
    who = "all" if n_simulated == n_raters else f"{n_simulated} of {n_raters}"
    return (
        f"SIMULATED: {who} raters are simulated (a pilot); their choices come from a model, "
        "so these scales and verdicts describe the simulator, not people."
    )
