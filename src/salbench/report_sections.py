"""paper.md's generated tables of sections 2 (Tomsett et al.: perturbation fidelity) and 3
(Arun et al.: randomization, repeatability, reproducibility), from the committed tables.

Registered in ``report.BLOCKS`` / ``report.NUMBERS`` on import (``report`` imports this
module at its end). Conventions: AOPC is quoted at the largest L of the table and on its
largest perturbation unit (the headline unit; notebook 05 says why); Krippendorff's
alpha and Spearman's rho with two decimals as Tomsett printed them; SSIM and AP with
three.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from salbench.metrics.fidelity import OUTPUTS, PAPER_OUTPUT
from salbench.papers import ARUN_METHODS, TOMSETT_METHODS
from salbench.report import BACKGROUND_LABELS, ReportError, Tables, block, fixed, label, number
from salbench.tables import images_in_every_run

EDGE = "sobel"
FIDELITY_ROWS = (*TOMSETT_METHODS, EDGE, "oracle", "random")
STYLE_LABELS = {"mean": "mean", "uniform": "uniform"}
REFERENCE_MAPS = {"oracle": "oracle (lesion mask)", "random": "random map"}


def _read(t: Tables, name: str) -> pd.DataFrame:
    cache = t.__dict__.setdefault("_section_tables", {})
    if name not in cache:
        cache[name] = t.read(name)
    return cache[name]


def _of_output(df: pd.DataFrame, name: str, output: str) -> pd.DataFrame:
    """The rows of one scored output (tables of runs before the margin hold the probability)."""
    if output not in OUTPUTS:
        raise ReportError(f"output={output!r}; valid: {list(OUTPUTS)}")
    if "output" not in df.columns:
        return df
    rows = df[df["output"] == output]
    if rows.empty:
        raise ReportError(f"{name} has no rows of output {output!r}; it has {sorted(df['output'].unique())}")
    return rows


def _headline(df: pd.DataFrame, name: str, output: str = PAPER_OUTPUT) -> pd.DataFrame:
    """The headline (largest) unit's rows of one output (default: the probability, Tomsett's)."""
    if df.empty:
        raise ReportError(f"{name} has no rows")
    df = _of_output(df, name, output)
    return df[df["unit"] == df["unit"].max()]


def _unit_rows(df: pd.DataFrame, unit: str, name: str, output: str = PAPER_OUTPUT) -> pd.DataFrame:
    """The headline (largest) unit's rows, or those of ``unit`` (pixels), of one output."""
    if unit == "headline":
        return _headline(df, name, output)
    df = _of_output(df, name, output)
    return df[df["unit"] == int(unit)]


def _metric_name(column: str, prefix: str = "AOPC_", sep: str = "L=") -> str:
    """faithfulness -> F; aopc_morf_L20 -> AOPC_MoRF L=20 (or MoRF L=20, MoRF L20)."""
    if column == "faithfulness":
        return "F"
    family, L = column.rsplit("_L", 1)
    return f"{prefix}{'MoRF' if family == 'aopc_morf' else 'LeRF'} {sep}{L}"


def _l_max(columns) -> int:
    ls = [int(m.group(1)) for c in columns if (m := re.fullmatch(r"aopc_morf_L(\d+)", str(c)))]
    if not ls:
        raise ReportError("fidelity_scores has no aopc_morf_L<L> columns")
    return max(ls)


def _bg(background: str) -> str:
    if background not in BACKGROUND_LABELS:
        raise ReportError(f"background={background!r}; valid: {list(BACKGROUND_LABELS)}")
    return background


def _two(x) -> str:
    return "-" if not np.isfinite(float(x)) else f"{float(x):.2f}"


def _ordered(methods, first=ARUN_METHODS) -> list[str]:
    methods = list(dict.fromkeys(methods))
    return [m for m in first if m in methods] + sorted(m for m in methods if m not in first)


# ------------------------------------------------------------------ section 2: Tomsett et al.

@number
def fidelity_unit(t: Tables) -> str:
    """The headline perturbation unit (side of the square patch, pixels)."""
    return str(int(_headline(_read(t, "fidelity_scores"), "fidelity_scores")["unit"].iloc[0]))


@number
def fidelity_n_images(t: Tables) -> str:
    """Lesion images scored per background (the same on each)."""
    s = _headline(_read(t, "fidelity_scores"), "fidelity_scores")
    n = s.groupby("background")["image"].nunique()
    if n.nunique() != 1:
        raise ReportError(f"fidelity_scores: images per background differ: {n.to_dict()}")
    return str(int(n.iloc[0]))


@number
def fidelity_n_orderings(t: Tables) -> str:
    r = _read(t, "fidelity_random_baseline")
    return str(int(r["n_orderings"].max()))


@block
def fidelity_means_table(t: Tables, background: str, output: str = PAPER_OUTPUT) -> str:
    """Mean AOPC_MoRF, AOPC_LeRF (largest L) and F per map and perturbation style, headline
    unit; the last row is the random-ordering baseline (Tomsett's Figure 2a reference)."""
    bg = _bg(background)
    s = _headline(_read(t, "fidelity_scores"), "fidelity_scores", output)
    s = s[(s["background"] == bg) & (s["model"] == "trained")]
    L = _l_max(s.columns)
    cols = [(f"aopc_morf_L{L}", st) for st in STYLE_LABELS] + [(f"aopc_lerf_L{L}", st) for st in STYLE_LABELS] + \
        [("faithfulness", st) for st in STYLE_LABELS]
    lines = ["| map | " + " | ".join(f"{_metric_name(c, prefix='')} ({st})" for c, st in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for m in FIDELITY_ROWS:
        g = s[s["method"] == m]
        if g.empty:
            raise ReportError(f"fidelity_scores: no {m!r} rows on {bg}")
        cells = []
        for c, st in cols:
            gs = g[g["style"] == st]
            if c == "faithfulness":
                gs = gs[gs["faithfulness_status"] == "ok"]
            v = gs[c].mean() if len(gs) else np.nan
            cells.append("-" if not np.isfinite(v) else fixed(v, 3))
        name = REFERENCE_MAPS[m] if m in REFERENCE_MAPS else label(m)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    rb = _headline(_read(t, "fidelity_random_baseline"), "fidelity_random_baseline", output)
    rb = rb[(rb["background"] == bg) & (rb["L"] == L)].set_index("style")
    cells = [fixed(rb.loc[st, "mean"], 3) for _, st in cols[:4]] + ["-", "-"]
    lines.append(f"| random orderings ({int(rb['n_orderings'].max())}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _tied(n) -> str:
    """' [k tied]' where ties at the resolution decided k images (or pairs), else ''."""
    return f" [{int(n)} tied]" if pd.notna(n) and int(n) > 0 else ""


def _alpha_cell(r: pd.Series) -> str:
    """'0.77 (0.62 to 1.00) [8 tied]', or 'undecidable' where ties leave no information."""
    if str(r.get("status", "ok")).startswith("undecidable"):
        return "undecidable"
    return f"{_two(r['alpha'])} ({_two(r['ci_low'])} to {_two(r['ci_high'])}){_tied(r.get('n_images_tied', 0))}"


@block
def tomsett_alpha_table(t: Tables, background: str, output: str = PAPER_OUTPUT) -> str:
    """Tomsett's Table 1 on one background: Krippendorff's alpha (bootstrap interval) of the
    per-image rankings of Tomsett's four methods, with and without the Sobel map."""
    bg = _bg(background)
    a = _headline(_read(t, "tomsett_alpha"), "tomsett_alpha", output)
    a = a[(a["background"] == bg) & (a["methods"] == "tomsett")]
    a = a.assign(with_edge=a["with_edge"].astype(str) == "True")
    cols = [(True, "mean"), (True, "uniform"), (False, "mean"), (False, "uniform")]
    head = {True: "with Sobel", False: "without Sobel"}
    lines = ["| metric | " + " | ".join(f"{st}, {head[we]}" for we, st in cols) + " |", "|---" * 5 + "|"]
    order = ["faithfulness"] + sorted((c for c in a["column"].unique() if c.startswith("aopc_morf")),
                                      key=lambda c: int(c.rsplit("L", 1)[1])) \
        + sorted((c for c in a["column"].unique() if c.startswith("aopc_lerf")), key=lambda c: int(c.rsplit("L", 1)[1]))
    for col in order:
        cells = []
        for we, st in cols:
            r = a[(a["column"] == col) & (a["with_edge"] == we) & (a["style"] == st)]
            if len(r) != 1:
                raise ReportError(f"tomsett_alpha: {len(r)} rows for {bg}/{col}/{st}/with_edge={we}")
            cells.append(_alpha_cell(r.iloc[0]))
        name = _metric_name(col)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _rho_cell(r: pd.Series) -> str:
    """A Spearman rho of tomsett_consistency: 'undecidable' where ties leave none."""
    if str(r.get("status", "ok")).startswith("undecidable"):
        return "undecidable"
    return f"{_two(r['rho'])}{_tied(r.get('n_images_tied', 0))}"


@block
def tomsett_consistency_table(t: Tables, output: str = PAPER_OUTPUT) -> str:
    """Tomsett's Table 2: Spearman's rho across images between metric pairs, per method
    (largest L, headline unit), both backgrounds."""
    c = _headline(_read(t, "tomsett_consistency"), "tomsett_consistency", output)
    methods = [*TOMSETT_METHODS, EDGE]
    lines = ["| background | metric pair | " + " | ".join(label(m) for m in methods) + " |", "|---" * 7 + "|"]
    pairs = c[["metric_a", "style_a", "metric_b", "style_b"]].drop_duplicates()
    for bg in BACKGROUND_LABELS:
        for p in pairs.itertuples(index=False):
            sel = c[(c["background"] == bg) & (c["metric_a"] == p.metric_a) & (c["style_a"] == p.style_a)
                    & (c["metric_b"] == p.metric_b) & (c["style_b"] == p.style_b)].set_index("method")["rho"]
            if sel.empty:
                continue

            def name(metric, style):
                return f"{_metric_name(metric, prefix='', sep='L')} ({style})"

            rows = c[(c["background"] == bg) & (c["metric_a"] == p.metric_a) & (c["style_a"] == p.style_a)
                     & (c["metric_b"] == p.metric_b) & (c["style_b"] == p.style_b)].set_index("method")
            cells = [_rho_cell(rows.loc[m]) if m in rows.index else "-" for m in methods]
            lines.append(f"| {BACKGROUND_LABELS[bg]} | {name(p.metric_a, p.style_a)} vs {name(p.metric_b, p.style_b)}"
                         f" | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _intermethod_cell(r: pd.Series) -> str:
    """Mean rho over method pairs, 'undecidable' where ties leave no pair a rho; '[k tied]':
    pairs with images that share a rank at the resolution."""
    if str(r.get("status", "ok")).startswith("undecidable"):
        return "undecidable"
    return f"{_two(r['mean_rho'])}{_tied(r.get('n_pairs_tied', 0))}"


@block
def tomsett_intermethod_table(t: Tables, output: str = PAPER_OUTPUT) -> str:
    """Inter-method reliability: mean pairwise Spearman between Tomsett's four methods
    across images (without / with the Sobel map), per metric and style."""
    im = _headline(_read(t, "tomsett_intermethod"), "tomsett_intermethod", output)
    sets = [("tomsett", "without Sobel"), ("tomsett_with_edge", "with Sobel")]
    cols = [(bg, st, ms) for bg in BACKGROUND_LABELS for st in STYLE_LABELS for ms, _ in sets]
    lines = ["| metric | " + " | ".join(f"{BACKGROUND_LABELS[bg]} {st}, {dict(sets)[ms]}" for bg, st, ms in cols)
             + " |", "|---" * (len(cols) + 1) + "|"]
    order = ["faithfulness"] + [c for c in im["column"].unique() if c != "faithfulness"]
    for col in order:
        cells = []
        for bg, st, ms in cols:
            r = im[(im["background"] == bg) & (im["style"] == st) & (im["method_set"] == ms) & (im["column"] == col)]
            cells.append(_intermethod_cell(r.iloc[0]) if len(r) == 1 else "-")
        name = _metric_name(col, prefix="")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@block
def fidelity_validity_table(t: Tables, output: str = PAPER_OUTPUT) -> str:
    """Beyond the paper: do the metrics agree with the ground truth? Per background, style
    and metric: the oracle map's rank among all scored maps (means within the tie
    tolerance share a rank; `fidelity_rank`), its margin over random
    orderings (AOPC), and the mean per-image Spearman between the metric's ranking of the
    methods and their localization AP ranking (bootstrap interval)."""
    v = _headline(_read(t, "fidelity_validity"), "fidelity_validity", output)
    s = _read(t, "fidelity_scores")
    L = _l_max(s.columns)
    cols = ["faithfulness", f"aopc_morf_L{L}", f"aopc_lerf_L{L}"]
    lines = ["| background | style | metric | oracle rank | oracle - random orderings | rho(metric, AP) over methods |",
             "|---|---|---|---|---|---|"]
    for bg in BACKGROUND_LABELS:
        for st in STYLE_LABELS:
            for col in cols:
                g = v[(v["background"] == bg) & (v["style"] == st) & (v["column"] == col)]
                if g.empty:
                    raise ReportError(f"fidelity_validity: no rows for {bg}/{st}/{col}")
                # The rank at the tie tolerance (fidelity_rank), not the stored one: a run
                # published before ties were applied stored ranks that float noise decided.
                rank_s = fidelity_rank(t, bg, "oracle", st, col, "maps", output)
                mr = g[g["question"] == "oracle_minus_random"]
                mr_s = "-" if mr.empty else (f"{fixed(mr['value'].iloc[0], 3)} (random: {fixed(mr['random_ci_low'].iloc[0], 3)}"
                                             f" to {fixed(mr['random_ci_high'].iloc[0], 3)})")
                sp = g[g["question"] == "spearman_with_ap"].iloc[0]
                sp_s = "-" if not np.isfinite(sp["value"]) else \
                    f"{_two(sp['value'])} ({_two(sp['ci_low'])} to {_two(sp['ci_high'])}; {int(sp['n_images'])} images)"
                lines.append(f"| {BACKGROUND_LABELS[bg]} | {st} | {_metric_name(col, prefix='')} | {rank_s} | {mr_s} | {sp_s} |")
    return "\n".join(lines) + "\n"


@block
def lesion_share_table(t: Tables, output: str = PAPER_OUTPUT) -> str:
    """Beyond the paper, per map and style: the share of the first L_max MoRF units that touch
    the lesion (hit), the mean MoRF drop at L_max, and the share of that drop which comes
    from the lesion units (over the images whose drop reaches
    `pipeline.fidelity.MIN_FINAL_DROP`, counted)."""
    v = _headline(_read(t, "fidelity_validity"), "fidelity_validity", output)
    cols = [(bg, st) for bg in BACKGROUND_LABELS for st in STYLE_LABELS]
    lines = ["| map | " + " | ".join(f"{BACKGROUND_LABELS[bg]} {st}: hit / drop / share (images)" for bg, st in cols)
             + " |", "|---" * (len(cols) + 1) + "|"]
    for m in FIDELITY_ROWS:
        cells = []
        for bg, st in cols:
            r = v[(v["background"] == bg) & (v["style"] == st) & (v["method"] == m)].set_index("question")
            if "final_drop" not in r.index:
                raise ReportError(f"fidelity_validity: no final_drop for {bg}/{st}/{m}")
            share = r.loc["lesion_share"]
            share_s = "-" if not np.isfinite(share["value"]) else fixed(share["value"], 2)
            cells.append(f"{fixed(r.loc['lesion_units_hit', 'value'], 3)} / {fixed(r.loc['final_drop', 'value'], 3)} / "
                         f"{share_s} ({int(share['n_images'])})")
        name = REFERENCE_MAPS[m] if m in REFERENCE_MAPS else label(m)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ section 3: Arun et al.

@number
def trust_n_images(t: Tables, which: str = "cheap") -> str:
    """Lesion images per background in the cascade: most methods (``cheap``) or the costly ones."""
    c = _read(t, "randomization_cascade")
    n = c[(c["step"] == 0) & (c["order"] == c["order"].iloc[0])].groupby(["background", "method"])["image"].nunique()
    return str(int(n.max() if which == "cheap" else n.min()))


@block
def randomization_table(t: Tables) -> str:
    """Arun's randomization test: mean SSIM (the reproduction's setting) between the trained
    model's maps and those after full top-down randomization, the different-image
    baseline, the verdict (p value)."""
    r = _read(t, "randomization_verdicts")
    methods = _ordered(r["method"])
    lines = ["| method | " + " | ".join(f"{BACKGROUND_LABELS[bg]}: SSIM full / baseline / verdict (p)"
                                       for bg in BACKGROUND_LABELS) + " |", "|---|---|---|"]
    for m in methods:
        cells = []
        for bg in BACKGROUND_LABELS:
            x = r[(r["background"] == bg) & (r["method"] == m)]
            if len(x) != 1:
                cells.append("-")
                continue
            x = x.iloc[0]
            cells.append(f"{fixed(x['mean_score'], 3)} / {fixed(x['mean_baseline'], 3)} / {x['verdict']} "
                         f"({float(x['p_value']):.2g})")
        lines.append(f"| {label(m)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@block
def cascade_table(t: Tables, background: str) -> str:
    """Beyond the paper, one background: SSIM (our setting) to the trained map after the
    first and the last step of each order, and localization AP trained vs after them."""
    bg = _bg(background)
    c = _read(t, "randomization_cascade")
    c = c[c["background"] == bg]
    orders = [o for o in ("top_down", "bottom_up", "single") if o in set(c["order"])]
    last = c.groupby("order")["step"].max()

    def mean(order, step, col, m):
        g = c[(c["order"] == order) & (c["step"] == step) & (c["method"] == m)][col]
        return "-" if g.empty or not np.isfinite(g.mean()) else fixed(g.mean(), 3)

    cols = []
    for o in orders:
        cols.append((o, 1))
        if o != "single":
            cols.append((o, int(last[o])))
    first = {"top_down": "output layer", "bottom_up": "first conv", "single": "output layer alone"}

    def name(o, step):
        return first[o] if step == 1 else "all layers"

    lines = ["| method | " + " | ".join(f"SSIM {o.replace('_', '-')}: {name(o, s)}" for o, s in cols)
             + " | AP trained | " + " | ".join(f"AP {o.replace('_', '-')}: {name(o, s)}" for o, s in cols) + " |",
             "|---" * (2 * len(cols) + 2) + "|"]
    for m in _ordered(c["method"]):
        lines.append(f"| {label(m)} | " + " | ".join(mean(o, s, "ssim", m) for o, s in cols)
                     + f" | {mean(orders[0], 0, 'ap', m)} | " + " | ".join(mean(o, s, "ap", m) for o, s in cols)
                     + " |")
    return "\n".join(lines) + "\n"


@block
def consistency_table(t: Tables, background: str) -> str:
    """Arun's Table 4 on one background: mean ± SD SSIM per method for repeatability (two
    VGG-like runs) and reproducibility (VGG-like vs DenseNet), verdicts against 0.5 and the
    U-Net, and the paired repeatability-vs-reproducibility test."""
    bg = _bg(background)
    s = _read(t, "consistency_scores")
    s = s[s["background"] == bg]
    v = _read(t, "consistency_verdicts")
    v = v[v["background"] == bg]
    rvr = _read(t, "repeatability_vs_reproducibility")
    rvr = rvr[rvr["background"] == bg].set_index("method")
    unet = s[s["kind"] == "unet"]["ssim"]
    lines = ["| method | repeatability SSIM | vs 0.5 / vs U-Net | reproducibility SSIM | vs 0.5 / vs U-Net "
             "| repeatability vs reproducibility |", "|---|---|---|---|---|---|"]

    def cell(kind, m):
        g = s[(s["kind"] == kind) & (s["method"] == m)]
        ok = g["ssim"].dropna()
        if ok.empty:
            note = g["note"].dropna().astype(str)
            return ("n/a: " + note.iloc[0].replace("not applicable: ", "")) if len(note) else "-", "-"
        verdicts = []
        for base in ("0.5", "unet"):
            x = v[(v["kind"] == kind) & (v["method"] == m) & (v["baseline"].astype(str) == base)]
            verdicts.append(x["verdict"].iloc[0] if len(x) else "-")
        return f"{fixed(ok.mean(), 3)} ± {fixed(ok.std(ddof=1), 3) if len(ok) > 1 else '-'}", " / ".join(verdicts)

    for m in _ordered(s.loc[s["kind"] != "unet", "method"]):
        rep, rep_v = cell("repeatability", m)
        rpr, rpr_v = cell("reproducibility", m)
        res = rvr.loc[m, "result"] if m in rvr.index else "-"
        if m in rvr.index and "p_value" in rvr.columns and np.isfinite(float(rvr.loc[m, "p_value"])):
            res += f" (p {float(rvr.loc[m, 'p_value']):.2g})"
        lines.append(f"| {label(m)} | {rep} | {rep_v} | {rpr} | {rpr_v} | {res} |")
    if len(unet.dropna()):
        lines.append(f"| U-Net (two runs; the high baseline) | {fixed(unet.mean(), 3)} ± {fixed(unet.std(ddof=1), 3)} "
                     "| - | - | - | - |")
    return "\n".join(lines) + "\n"


@block
def run_spread_table(t: Tables) -> str:
    """Issue 14: mean localization AP per method for each classifier run's trained maps
    (`localization_scores`, the images every run was scored on; the selected run marked *),
    and the largest difference between runs."""
    r = _read(t, "localization_scores")
    r = images_in_every_run(r[r["model"] == "trained"])
    runs = sorted(r["run"].unique())
    sel = {bg: int(g.loc[g["selected"].astype(str) == "True", "run"].iloc[0])
           for bg, g in r.groupby("background") if (g["selected"].astype(str) == "True").any()}
    head = []
    for bg in BACKGROUND_LABELS:
        head += [f"{BACKGROUND_LABELS[bg]} run {x}{'*' if sel.get(bg) == x else ''}" for x in runs]
        head.append(f"{BACKGROUND_LABELS[bg]} max - min")
    lines = ["| method | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for m in _ordered(r["method"]):
        cells = []
        for bg in BACKGROUND_LABELS:
            means = r[(r["background"] == bg) & (r["method"] == m)].groupby("run")["ap"].mean()
            cells += [fixed(means[x], 3) if x in means.index else "-" for x in runs]
            cells.append(fixed(means.max() - means.min(), 3) if len(means) > 1 else "-")
        lines.append(f"| {label(m)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@number
def run_share(t: Tables, background: str, component: str, digits: str = "0") -> str:
    """Share (%) of localization-AP variance of a component (`localization_run_variance`)."""
    v = _read(t, "localization_run_variance")
    x = v[(v["background"] == _bg(background)) & (v["component"] == component)]
    if len(x) != 1:
        raise ReportError(f"localization_run_variance: no {component!r} row for {background}; components "
                          f"{sorted(v['component'].unique())}")
    return f"{100 * float(x['share'].iloc[0]):.{int(digits)}f} %"


@number
def steps_to_95(t: Tables, background: str) -> str:
    """The VGG-like runs' `steps_to_95` on one background, in run order ("1,550 and 1,500")."""
    a = t.accuracy
    a = a[(a["background"] == _bg(background)) & (a["architecture"] == "vgg")].sort_values("run")
    if a.empty or a["steps_to_95"].isna().any():
        raise ReportError(f"accuracy: no steps_to_95 for every VGG-like run on {background}")
    words = [f"{int(x):,}" for x in a["steps_to_95"]]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


@number
def fidelity_mean(t: Tables, background: str, method: str, style: str, column: str, digits: str = "3",
                  unit: str = "headline", output: str = PAPER_OUTPUT) -> str:
    """Mean of a fidelity_scores column (e.g. aopc_morf_L20) over images, trained model, on the
    headline (largest) unit or on ``unit`` (pixels)."""
    s = _unit_rows(_read(t, "fidelity_scores"), unit, "fidelity_scores", output)
    if column not in s.columns:
        raise ReportError(f"fidelity_scores has no column {column!r}")
    g = s[(s["background"] == _bg(background)) & (s["method"] == method) & (s["style"] == style)]
    if column == "faithfulness":
        g = g[g["faithfulness_status"] == "ok"]
    if g.empty:
        raise ReportError(f"fidelity_scores: no rows for {background}/{method}/{style}")
    return fixed(g[column].mean(), digits)


@number
def fidelity_count(t: Tables, background: str, method: str, style: str, column: str, below: str,
                   output: str = PAPER_OUTPUT) -> str:
    """'k of n' images whose fidelity_scores ``column`` is below ``below``."""
    s = _headline(_read(t, "fidelity_scores"), "fidelity_scores", output)
    g = s[(s["background"] == _bg(background)) & (s["method"] == method) & (s["style"] == style)][column].dropna()
    if g.empty:
        raise ReportError(f"fidelity_scores: no {column} for {background}/{method}/{style}")
    return f"{int((g < float(below)).sum())} of {len(g)}"


@number
def max_alpha(t: Tables, background: str, metric: str = "all", output: str = PAPER_OUTPUT) -> str:
    """The largest alpha of Tomsett's layout on one background (of one metric family:
    aopc_morf, aopc_lerf, faithfulness), with its cell."""
    a = _headline(_read(t, "tomsett_alpha"), "tomsett_alpha", output)
    a = a[(a["background"] == _bg(background)) & (a["methods"] == "tomsett")]
    if metric != "all":
        a = a[a["metric"] == metric]
        if a.empty:
            raise ReportError(f"tomsett_alpha: no {metric!r} cells; metrics aopc_morf, aopc_lerf, faithfulness")
    r = a.loc[a["alpha"].idxmax()]
    edge = "with" if str(r["with_edge"]) == "True" else "without"
    name = _metric_name(str(r["column"]))
    return f"{_two(r['alpha'])} ({name}, {r['style']}, {edge} Sobel; interval {_two(r['ci_low'])} to {_two(r['ci_high'])})"


@number
def fidelity_range(t: Tables, background: str, style: str, column: str, unit: str = "headline",
                   digits: str = "3", output: str = PAPER_OUTPUT, among: str = "all") -> str:
    """'min to max' of the per-map means of a fidelity_scores column over every scored map
    (or the maps of ``among``: five, tomsett_oracle, maps)."""
    s = _unit_rows(_read(t, "fidelity_scores"), unit, "fidelity_scores", output)
    g = s[(s["background"] == _bg(background)) & (s["style"] == style)]
    if among != "all":
        if among not in MAP_SETS:
            raise ReportError(f"among={among!r}; valid: 'all', {sorted(MAP_SETS)}")
        g = g[g["method"].isin(MAP_SETS[among])]
    if column == "faithfulness":
        g = g[g["faithfulness_status"] == "ok"]
    means = g.groupby("method")[column].mean()
    if means.empty:
        raise ReportError(f"fidelity_scores: no {column} on {background}/{style}/unit {unit}")
    return f"{fixed(means.min(), digits)} to {fixed(means.max(), digits)}"


@number
def verdicts_across_runs(t: Tables) -> str:
    """Method-vs-baseline comparisons of `localization_mixed_models` (every run) with the same
    verdict in every classifier run: "N of M"."""
    m = t.read("localization_mixed_models")
    keys = ["background", "metric", "method", "baseline"]
    if "run" not in m.columns or m["run"].nunique() < 2:
        raise ReportError("localization_mixed_models has one classifier run; nothing to agree across runs")
    same = m.groupby(keys)["verdict"].nunique() == 1
    return f"{int(same.sum())} of {len(same)}"


@number
def claims_unsettled(t: Tables, section: str) -> str:
    """Claims of a paper.md section (ledger `section`) that hold in some runs but not all: "N of M"."""
    c = t.claims[t.claims["section"] == str(section)]
    if c.empty:
        raise ReportError(f"claims.csv has no claim of section {section!r}; sections {sorted(t.claims['section'].unique())}")
    return f"{int((c['verdict'] == 'holds in some runs').sum())} of {len(c)}"


# ------------------------------------------------------------------ section 2: statements

FIVE = (*TOMSETT_METHODS, EDGE)
MAP_SETS = {"maps": FIDELITY_ROWS, "five": FIVE, "tomsett_oracle": (*TOMSETT_METHODS, "oracle")}


def _tolerance(t: Tables, background: str, column: str, output: str) -> float:
    """Tie tolerance of a mean fidelity score: the output's measured resolution, or for a run
    that did not measure it the 6 decimals its scores were published with; 0 for F."""
    if column == "faithfulness":
        return 0.0
    if t.has("fidelity_resolution"):
        r = _of_output(_read(t, "fidelity_resolution"), "fidelity_resolution", output)
        row = r[r["background"] == background]
        if len(row) != 1:
            raise ReportError(f"fidelity_resolution: {len(row)} rows for {background}/{output}")
        return float(row["resolution"].iloc[0])
    from salbench.tables import LEGACY_FIDELITY_PRECISION

    return LEGACY_FIDELITY_PRECISION


def _map_means(t: Tables, background: str, style: str, column: str, among: str, output: str) -> pd.Series:
    if among not in MAP_SETS:
        raise ReportError(f"among={among!r}; valid: {sorted(MAP_SETS)}")
    s = _headline(_read(t, "fidelity_scores"), "fidelity_scores", output)
    if column not in s.columns:
        raise ReportError(f"fidelity_scores has no column {column!r}")
    g = s[(s["background"] == _bg(background)) & (s["style"] == style) & s["method"].isin(MAP_SETS[among])]
    if column == "faithfulness":
        g = g[g["faithfulness_status"] == "ok"]
    means = g.groupby("method")[column].mean()
    missing = sorted(set(MAP_SETS[among]) - set(means.index))
    if missing:
        raise ReportError(f"fidelity_scores: no {column} of {missing} on {background}/{style}")
    from salbench.metrics.fidelity import higher_is_better

    return means if higher_is_better(column) else -means


@number
def fidelity_rank(t: Tables, background: str, method: str, style: str, column: str, among: str = "maps",
                  output: str = PAPER_OUTPUT) -> str:
    """'k of n': a map's rank by its mean score among the scored maps (``maps``: Tomsett's
    four, Sobel, oracle, random; ``five``: Tomsett's four and Sobel), 1 = best in the
    metric's own direction; means within the tie tolerance share the best rank."""
    better = _map_means(t, background, style, column, among, output)
    tol = _tolerance(t, background, column, output)
    return f"{1 + int((better > better[method] + tol).sum())} of {len(better)}"


@number
def fidelity_best(t: Tables, background: str, style: str, column: str, among: str = "maps",
                  output: str = PAPER_OUTPUT) -> str:
    """The map(s) with the best mean score (ties within the tolerance named together)."""
    better = _map_means(t, background, style, column, among, output)
    tol = _tolerance(t, background, column, output)
    best = [m for m in better.index if better[m] >= better.max() - tol]
    return ", ".join(REFERENCE_MAPS[m] if m in REFERENCE_MAPS else label(m) for m in _ordered(best, FIDELITY_ROWS))


@number
def fidelity_outputs(t: Tables) -> str:
    """The outputs the committed fidelity scores were computed on: 'probability' or
    'probability, logit_margin'."""
    s = _read(t, "fidelity_scores")
    return ", ".join(o for o in OUTPUTS if o in set(s["output"]))


@number
def fidelity_resolution_measured(t: Tables) -> str:
    """'yes' when the run measured its outputs' resolution (fidelity_resolution.csv), else 'no'."""
    return "yes" if t.has("fidelity_resolution") else "no"


@number
def p_pred_min(t: Tables, digits: str = "5") -> str:
    """The smallest probability of the predicted class over the scored clean images."""
    s = _headline(_read(t, "fidelity_scores"), "fidelity_scores")
    return fixed(float(s["p_pred"].min()), digits)


@number
def alpha_cells_tied(t: Tables, background: str, metric: str, output: str = PAPER_OUTPUT) -> str:
    """'k of n' cells of Tomsett's Table 1 layout (headline unit, Tomsett's four with and
    without Sobel, both styles, every L) of one metric family (aopc_morf, aopc_lerf,
    faithfulness) on which every image's ranking holds a tie at the resolution."""
    a = _headline(_read(t, "tomsett_alpha"), "tomsett_alpha", output)
    a = a[(a["background"] == _bg(background)) & (a["methods"] == "tomsett") & (a["metric"] == metric)]
    if a.empty:
        raise ReportError(f"tomsett_alpha: no {metric!r} cells on {background}")
    if "n_images_tied" not in a.columns:
        raise ReportError("tomsett_alpha has no n_images_tied: it comes from a run before ties were counted")
    return f"{int((a['n_images_tied'] == a['n_images']).sum())} of {len(a)}"


@number
def alpha_n_boot(t: Tables) -> str:
    """Bootstrap resamples behind the alpha intervals (one number; several raise)."""
    n = _read(t, "tomsett_alpha")["n_boot"]
    n = n[n > 0].unique()
    if len(n) != 1:
        raise ReportError(f"tomsett_alpha: n_boot takes several values {sorted(n)}")
    return f"{int(n[0]):,}"


@number
def alpha_value(t: Tables, background: str, column: str, style: str, edge: str, output: str = PAPER_OUTPUT) -> str:
    """One alpha of Tomsett's layout (headline unit, Tomsett's four; edge: with / without)."""
    if edge not in ("with", "without"):
        raise ReportError(f"edge={edge!r}: choose 'with' or 'without'")
    a = _headline(_read(t, "tomsett_alpha"), "tomsett_alpha", output)
    r = a[(a["background"] == _bg(background)) & (a["methods"] == "tomsett") & (a["column"] == column)
          & (a["style"] == style) & ((a["with_edge"].astype(str) == "True") == (edge == "with"))]
    if len(r) != 1:
        raise ReportError(f"tomsett_alpha: {len(r)} cells for {background}/{column}/{style}/{edge} Sobel")
    return _alpha_cell(r.iloc[0])


@number
def validity_value(t: Tables, background: str, style: str, column: str, question: str, method: str = "oracle",
                   digits: str = "3", output: str = PAPER_OUTPUT) -> str:
    """One value of fidelity_validity (headline unit): an oracle rank as 'k of n', else the value."""
    v = _headline(_read(t, "fidelity_validity"), "fidelity_validity", output)
    r = v[(v["background"] == _bg(background)) & (v["style"] == style) & (v["column"] == column)
          & (v["question"] == question) & (v["method"] == method)]
    if len(r) != 1:
        raise ReportError(f"fidelity_validity: {len(r)} rows for {background}/{style}/{column}/{question}/{method}")
    r = r.iloc[0]
    if question == "oracle_rank":
        return f"{int(r['value'])} of {int(r['n_methods'])}"
    return fixed(float(r["value"]), digits)


@number
def claims_count(t: Tables, section: str, verdict: str) -> str:
    """'k of n' claims of a paper.md section (ledger ``section``) with a verdict over runs:
    every (holds in every run), some, no."""
    words = {"every": "holds in every run", "some": "holds in some runs", "no": "holds in no run"}
    if verdict not in words:
        raise ReportError(f"verdict={verdict!r}; valid: {sorted(words)}")
    c = t.claims[t.claims["section"].astype(str) == section]
    if c.empty:
        raise ReportError(f"claims: no section {section!r}; sections {sorted(t.claims['section'].astype(str).unique())}")
    return f"{int((c['verdict'] == words[verdict]).sum())} of {len(c)}"


@number
def claim_verdict(t: Tables, claim_id: str) -> str:
    """A claim's verdict over runs ('holds in every run', ...)."""
    c = t.claims.set_index("claim_id")
    if claim_id not in c.index:
        raise ReportError(f"claims: no claim {claim_id!r}")
    return str(c.loc[claim_id, "verdict"])


@number
def fidelity_status(t: Tables, background: str, status: str, unit: str = "headline", output: str = PAPER_OUTPUT) -> str:
    """'k of n' score rows (maps x images x styles) whose faithfulness_status is ``status``."""
    s = _unit_rows(_read(t, "fidelity_scores"), unit, "fidelity_scores", output)
    s = s[s["background"] == _bg(background)]
    if s.empty:
        raise ReportError(f"fidelity_scores: no rows on {background} at unit {unit}")
    return f"{int((s['faithfulness_status'] == status).sum())} of {len(s)}"


@block
def tomsett_claims_by_output(t: Tables) -> str:
    """Each of Tomsett's claims evaluated on the probability (the ledger's, as the paper
    scored) and on the logit margin, beside each other: statistic and whether it holds.
    Needs tables with both outputs (a run of notebook 05 that scored them)."""
    from salbench import claims as ledger
    from salbench import claims_tomsett_arun as ct

    have = set(_read(t, "fidelity_scores")["output"])
    if set(OUTPUTS) - have:
        raise ReportError(f"fidelity_scores holds the outputs {sorted(have)}; this table needs {list(OUTPUTS)} "
                          "(a run of notebook 05 that scored the logit margin)")
    names = [n for n in ledger.claim_tables() if t.has(n)]
    tables = {n: t.claims if n == "claims" else t.read(n) for n in names}
    lines = [f"| claim | {' | '.join(o.replace('_', ' ') for o in OUTPUTS)} |", "|---" * (len(OUTPUTS) + 1) + "|"]
    for claim in ct.TOMSETT_CLAIMS:
        cells = []
        for output in OUTPUTS:
            with ct.on_output(output):
                row = claim.evaluate(tables).set_index("run").loc[ledger.POOLED]
            stat = row["statistic"]
            stat_s = "undecidable" if not np.isfinite(stat) else (str(int(stat)) if stat == int(stat) else f"{stat:.4f}")
            cells.append(f"{stat_s}: {'holds' if row['holds'] else 'does not hold'}")
        lines.append(f"| {claim.sentence} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
