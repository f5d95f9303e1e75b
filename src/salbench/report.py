"""paper.md's tables and numbers, generated from the committed tables (tables/*.csv).

paper.md is hand-written prose with generated parts between markers:

* a block, e.g. a whole Markdown table, on lines of its own::

      <!-- report:accuracy_table -->
      | ... |
      <!-- /report:accuracy_table -->

  A block may take arguments like a number: ``<!-- report:claims_table paper=Budding -->``
  (closed by ``<!-- /report:claims_table -->``).

* a number (or a short generated phrase) inside prose::

      mAP <!-- n:mean perlin trained gradient ap -->0.787<!-- /n -->

  ``mean`` names a generator in ``NUMBERS``; the words after it are its arguments
  (``key=value`` words are keyword arguments).

* a statement: a sentence (or a list item, a table row) that states a result in words,
  guarded by a condition on the tables::

      <!-- s:extreme mri trained auprc which=max has 'Guided Backprop' -->Guided Backprop
      localizes best on MRI<!-- /s -->

  The condition is ``GENERATOR args OP VALUE``: any number generator, an operator
  (``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, or ``has`` for "the text contains"),
  and a number, ``all`` / ``none`` (for a 'k of n' count), a quoted text, or another
  generator in braces (``{mean mri trained gradient ap}``). Conditions joined by `` ; ``
  must all hold. A count 'k of n' compares k; a range 'lo-hi' or 'lo to hi' holds
  for ``< x`` when its top is below x and for ``> x`` when its bottom is above it
  (every value in it); a percentage, or a number followed by a note in brackets
  ('0.78 (AOPC_MoRF L=80, ...)'), compares its number. A statement may hold number
  markers. Predicates that are not a number (a claim's verdict) are generators too.

``python -m salbench report`` rewrites every generated part from the tables (an atomic
write) in paper.md and README.md; ``python -m salbench report --check`` rewrites nothing
and exits non-zero, naming every generated part that differs from what the tables give,
every statement whose condition the tables no longer support, and every marker whose
generator is unknown or whose arguments do not fit it. ``python -m salbench report
--statements`` lists every generated and guarded statement with its status.

Choices (ours): means are exact means of the per-image scores
(``localization_scores``, 6 decimals) rounded once, not the 4-decimal summary
rounded again; confidence intervals, randomization and mixed-model numbers come from
their own tables, and a 4-decimal value ending in 5 is not rounded to 3 (``from_table``
raises: it could go either way); p values are printed with two significant digits. The papers' own
reported numbers are literal text in paper.md, not generated.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from salbench import atomic, paths, tables
from salbench.errors import ReportError
from salbench.papers import BUDDING_METHODS




# Display names in paper.md (the papers' spelling); a method missing here is an error,
# so a new method gets a name before paper.md can quote it.
LABELS = {
    "gradient": "Gradient", "sensitivity": "Sensitivity", "lrp_z": "LRP-z", "lrp_alpha2_beta1": "LRP-α2β1",
    "deep_taylor": "Deep Taylor", "guided_backprop": "Guided Backprop", "deconvnet": "DeConvNet",
    "patternnet": "PatternNet", "patternattribution": "PatternAttribution", "gradient_x_input": "Gradient x Input",
    "integrated_gradients": "Integrated Gradients", "smoothgrad": "SmoothGrad", "smooth_ig": "Smooth IG",
    "grad_cam": "Grad-CAM", "guided_grad_cam": "Guided Grad-CAM", "xrai": "XRAI", "deep_shap": "DeepSHAP",
    "avg_mask": "average mask", "unet": "U-Net", "sobel": "Sobel", "random": "random", "constant": "constant",
}
BACKGROUND_LABELS = {"perlin": "Perlin", "mri": "MRI"}
METRIC_LABELS = {"roc_auc": "ROC-AUC", "ap": "AP", "prec99": "PREC99", "auprc": "AUPRC"}
METHOD_SETS = {"budding": BUDDING_METHODS}
# Two methods whose exact means differ by less than this are tied (Gradient and
# Sensitivity score identically; the per-image scores carry 6 decimals).
TIE = 1e-9


def label(key: str) -> str:
    if key not in LABELS:
        raise ReportError(f"no display name for {key!r} in report.LABELS; known: {sorted(LABELS)}")
    return LABELS[key]


# --------------------------------------------------------------------------- tables


class Tables:
    """The committed tables, read once each on first use."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder else paths.repo_root() / "tables"
        if not self.folder.is_dir():
            raise ReportError(f"tables folder {self.folder}: no such folder")

    def read(self, name: str, **read_csv) -> pd.DataFrame:
        path = self.folder / f"{name}.csv"
        if not path.exists():
            raise ReportError(f"{path}: no such table")
        spec = tables.get_spec(name)
        df = spec.upgrade(pd.read_csv(path, **read_csv))
        spec.check(df, str(path))
        return df

    def has(self, name: str) -> bool:
        return (self.folder / f"{name}.csv").exists()

    @cached_property
    def accuracy(self) -> pd.DataFrame:
        return self.read("accuracy")

    def selected_run(self, name: str) -> pd.DataFrame:
        """A per-run localization table's rows of the selected (best on holdout) run,
        which paper.md section 1 quotes; a table from before runs (no ``selected``
        column) is all of it."""
        df = self.read(name)
        return df[df["selected"].astype(bool)].reset_index(drop=True) if "selected" in df.columns else df

    @cached_property
    def scores(self) -> pd.DataFrame:
        return self.selected_run("localization_scores")

    @cached_property
    def summary(self) -> pd.DataFrame:
        return self.selected_run("localization_summary").set_index(["background", "model", "method"]).sort_index()

    @cached_property
    def mixed(self) -> pd.DataFrame:
        return self.selected_run("localization_mixed_models")

    @cached_property
    def randomization(self) -> pd.DataFrame:
        return self.selected_run("localization_randomization")

    @cached_property
    def claims(self) -> pd.DataFrame:
        """The claims ledger (``python -m salbench claims`` writes it)."""
        return self.read("claims", dtype={"section": str})

    @cached_property
    def means(self) -> pd.DataFrame:
        """Exact means of the per-image scores, indexed by (background, model, method)."""
        metrics = [c for c in METRIC_LABELS if c in self.scores.columns]
        return self.scores.groupby(["background", "model", "method"])[metrics].mean().sort_index()

    def mean(self, background: str, model: str, method: str, metric: str) -> float:
        try:
            return float(self.means.loc[(background, model, method), metric])
        except KeyError:
            raise ReportError(f"localization_scores has no {metric!r} for {(background, model, method)}; "
                              f"backgrounds {sorted(self.means.index.unique(0))}, models "
                              f"{sorted(self.means.index.unique(1))}, metrics {list(self.means.columns)}") from None

    def summary_row(self, background: str, model: str, method: str) -> pd.Series:
        try:
            return self.summary.loc[(background, model, method)]
        except KeyError:
            raise ReportError(f"localization_summary has no row {(background, model, method)}") from None

    def methods(self, model: str, background: str) -> list[str]:
        return sorted(self.means.loc[(background, model)].index)


# --------------------------------------------------------------------------- formatting


def fixed(x: float, digits: int | str = 3) -> str:
    if not np.isfinite(x):
        raise ReportError(f"value {x} is not finite")
    return f"{x:.{int(digits)}f}"


def from_table(x: float, digits: int | str = 3, table_digits: int = 4) -> str:
    """`fixed` for a value a table stores with `table_digits` decimals: refuses to round
    a stored ...5 to one digit fewer, which could go either way for the true value."""
    digits = int(digits)
    if digits < table_digits:
        units = round(abs(x) * 10 ** table_digits)
        step = 10 ** (table_digits - digits)
        if units % step == step // 2:
            raise ReportError(f"value {x:.{table_digits}f} is stored with {table_digits} decimals; rounding it to "
                              f"{digits} is ambiguous: quote it with digits={table_digits}")
    return fixed(x, digits)


def sci(p: float, digits: int = 2) -> str:
    """Two significant digits, exponent without padding: 5.2e-7."""
    mantissa, exp = f"{p:.{digits - 1}e}".split("e")
    return f"{mantissa}e{int(exp)}"


def percent(x: float, digits: int | str = 2) -> str:
    return f"{100 * x:.{int(digits)}f} %"


def count(k: int, n: int) -> str:
    return f"{k} of {n}"


def join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def per_background(values: dict[str, str]) -> str:
    """One value if every background gives the same text, else 'a (Perlin), b (MRI)'."""
    if len(set(values.values())) == 1:
        return next(iter(values.values()))
    return ", ".join(f"{v} ({BACKGROUND_LABELS[bg]})" for bg, v in values.items())


def value_range(values, digits: int | str = 3) -> str:
    """'lo-hi', or one value when both ends print the same."""
    lo, hi = fixed(min(values), digits), fixed(max(values), digits)
    return lo if lo == hi else f"{lo}-{hi}"


# --------------------------------------------------------------------------- generators

NUMBERS: dict[str, Callable[..., str]] = {}
BLOCKS: dict[str, Callable[..., str]] = {}


def number(fn):
    NUMBERS[fn.__name__] = fn
    return fn


def block(fn):
    BLOCKS[fn.__name__] = fn
    return fn


def _backgrounds(t: Tables) -> list[str]:
    present = set(t.means.index.unique(0))
    return [bg for bg in BACKGROUND_LABELS if bg in present]


@number
def mean(t: Tables, background, model, method, metric, digits=3, pct=None) -> str:
    """Exact mean over images of one method's per-image metric (localization_scores)."""
    x = t.mean(background, model, method, metric)
    return percent(x, pct) if pct is not None else fixed(x, digits)


@number
def both(t: Tables, model, method, metric, digits=3, pct=None) -> str:
    """`mean` on every background: one value if they agree at this precision."""
    return per_background({bg: mean(t, bg, model, method, metric, digits, pct) for bg in _backgrounds(t)})


@number
def ci(t: Tables, background, model, method, metric, digits=4) -> str:
    """Bootstrap 95 % CI of the mean (localization_summary, 4 decimals): 'lo-hi'."""
    row = t.summary_row(background, model, method)
    return f"{from_table(row[f'ci_lo_{metric}'], digits)}-{from_table(row[f'ci_hi_{metric}'], digits)}"


@number
def n_methods(t: Tables, model) -> str:
    """How many methods `model` has on every background."""
    return per_background({bg: str(len(t.methods(model, bg))) for bg in _backgrounds(t)})


@number
def n_images(t: Tables, background, model) -> str:
    return str(int(t.summary.loc[(background, model), "n_images"].max()))


@number
def gap(t: Tables, background, model, method, metric, minus, digits=2) -> str:
    """mean(metric) - mean(minus) of one method."""
    return fixed(t.mean(background, model, method, metric) - t.mean(background, model, method, minus), digits)


@number
def gap_range(t: Tables, model, method, metric, minus, digits=2) -> str:
    """`gap` over the backgrounds, as 'lo-hi'."""
    return value_range([t.mean(bg, model, method, metric) - t.mean(bg, model, method, minus)
                        for bg in _backgrounds(t)], digits)


@number
def ratio(t: Tables, model, method, over_model, over_method, metric, digits=0) -> str:
    """mean(method) / mean(over_method) on every background."""
    return per_background({bg: fixed(t.mean(bg, model, method, metric) / t.mean(bg, over_model, over_method, metric),
                                     digits) for bg in _backgrounds(t)})


@number
def range_means(t: Tables, model, metric, methods="all", digits=3) -> str:
    """Range of the exact means over both backgrounds and the methods of a set."""
    means = [t.mean(bg, model, m, metric) for bg in _backgrounds(t) for m in _method_set(t, model, bg, methods)]
    return value_range(means, digits)


def _method_set(t: Tables, model, background, methods) -> list[str]:
    if methods == "all":
        return t.methods(model, background)
    if methods not in METHOD_SETS:
        raise ReportError(f"methods={methods!r}: choose 'all' or one of {sorted(METHOD_SETS)}")
    return list(METHOD_SETS[methods])


@number
def rank(t: Tables, background, model, method, metric, methods="all") -> str:
    """Rank (1 = highest mean; ties share the best rank) of a method within a set."""
    pool = _method_set(t, model, background, methods)
    mine = t.mean(background, model, method, metric)
    return str(1 + sum(t.mean(background, model, m, metric) > mine + TIE for m in pool))


@number
def extreme(t: Tables, background, model, metric, which="max", digits=3) -> str:
    """The best (which=max) or worst (min) method(s) of `model` and its mean: 'Gradient (0.787)'."""
    if which not in ("max", "min"):
        raise ReportError(f"which={which!r}: choose 'max' or 'min'")
    means = {m: t.mean(background, model, m, metric) for m in t.methods(model, background)}
    best = (max if which == "max" else min)(means.values())
    tied = [label(m) for m, v in means.items() if abs(v - best) <= TIE]
    return f"{join(sorted(tied))} ({fixed(best, digits)})"


def _below(t: Tables, background, model, metric, ref_model, ref_method) -> tuple[list[str], int]:
    ref = t.mean(background, ref_model, ref_method, metric)
    means = {m: t.mean(background, model, m, metric) for m in t.methods(model, background)}
    below = sorted((m for m, v in means.items() if v < ref), key=lambda m: -means[m])
    return below, len(means)


@number
def count_below(t: Tables, background, model, metric, ref_model, ref_method) -> str:
    """How many methods of `model` have a lower mean than a reference: 'k of n'."""
    below, n = _below(t, background, model, metric, ref_model, ref_method)
    return count(len(below), n)


@number
def list_below(t: Tables, background, model, metric, ref_model, ref_method) -> str:
    """The methods of `count_below`, highest mean first."""
    below, _ = _below(t, background, model, metric, ref_model, ref_method)
    return ", ".join(label(m) for m in below) if below else "none"


@number
def constant_maps(t: Tables, background, model) -> str:
    """The methods of `model` that gave constant maps: 'Grad-CAM (6 of 40 images) and ...'."""
    rows = t.summary.loc[(background, model)]
    hit = rows[rows["n_constant_maps"] > 0].sort_index()
    if hit.empty:
        return "no method"
    parts = [f"{label(m)} ({count(int(r.n_constant_maps), int(r.n_images))}{' images' if i == 0 else ''})"
             for i, (m, r) in enumerate(hit.iterrows())]
    return join(parts)


@number
def n_constant(t: Tables, model, method) -> str:
    """Constant maps of one method on every background: '2 of 10'."""
    return per_background({bg: count(int(t.summary_row(bg, model, method)["n_constant_maps"]),
                                     int(t.summary_row(bg, model, method)["n_images"])) for bg in _backgrounds(t)})


@number
def constant_map_scores(t: Tables, model, metric, digits=3) -> str:
    """Range of the per-image scores of every constant map the methods of `model` gave."""
    s = t.scores
    rows = s[s["constant_map"].astype(bool) & (s["model"] == model)]
    if rows.empty:
        raise ReportError(f"localization_scores: no constant map of model {model!r}")
    return value_range(rows[metric], digits)


# --- trained vs randomized weights (localization_randomization)

def _rand(t: Tables, model, metric, constant="all") -> pd.DataFrame:
    r = t.randomization
    rows = r[(r["model"] == model) & (r["metric"] == metric)]
    if rows.empty:
        raise ReportError(f"localization_randomization has no rows for model {model!r}, metric {metric!r}")
    if constant == "exclude":
        keep = [t.summary_row(bg, model, m)["n_constant_maps"] == 0
                for bg, m in zip(rows["background"], rows["method"])]
        rows = rows[np.asarray(keep, bool)]
    elif constant != "all":
        raise ReportError(f"constant={constant!r}: choose 'all' or 'exclude'")
    return rows


@number
def rand_range(t: Tables, model, metric, constant="all", digits=3) -> str:
    """Range of the method means in localization_randomization ('exclude': methods
    with a constant map left out)."""
    means = _rand(t, model, metric, constant)["mean"]
    return f"{from_table(means.min(), digits)}-{from_table(means.max(), digits)}"


@number
def rand_mean(t: Tables, background, model, method, metric, digits=3) -> str:
    rows = _rand(t, model, metric)
    row = rows[(rows["background"] == background) & (rows["method"] == method)]
    if len(row) != 1:
        raise ReportError(f"localization_randomization: no row {(background, model, method, metric)}")
    return from_table(row["mean"].iloc[0], digits)


@number
def rand_count_below(t: Tables, model, metric, threshold) -> str:
    """How many (background, method) means lie below `threshold`: 'k of n'."""
    rows = _rand(t, model, metric)
    return count(int((rows["mean"] < float(threshold)).sum()), len(rows))


@number
def rand_max_over_random(t: Tables, model, metric, digits=1) -> str:
    """Largest method mean over the random-map baseline's mean on the same background."""
    rows = _rand(t, model, metric)
    top = rows.loc[rows["mean"].idxmax()]
    return fixed(top["mean"] / t.mean(top["background"], "baseline", "random", metric), digits)


# --- Arun et al.'s test (localization_mixed_models)

def _fits(t: Tables, metric=None) -> pd.DataFrame:
    m = t.mixed
    if metric is None:
        return m
    rows = m[m["metric"] == metric]
    if rows.empty:
        raise ReportError(f"localization_mixed_models has no metric {metric!r}; valid: {sorted(m['metric'].unique())}")
    return rows


@number
def n_fits(t: Tables, metric=None) -> str:
    return str(len(_fits(t, metric)))


@number
def verdicts(t: Tables, metric, role, verdict) -> str:
    """How many comparisons against the `role` ("low"/"high") baseline got `verdict` ('pass',
    'did_not_pass', 'uncertain'; underscores for spaces): 'k of n'."""
    rows = _fits(t, metric)
    rows = rows[rows["role"] == role]
    if rows.empty:
        raise ReportError(f"localization_mixed_models has no role {role!r}")
    return count(int((rows["verdict"] == verdict.replace("_", " ")).sum()), len(rows))


@number
def max_p(t: Tables, metric) -> str:
    """Largest (adjusted) p value among one metric's comparisons."""
    return sci(_fits(t, metric)["p_value"].max())


@number
def verdicts_agree(t: Tables, metric, other) -> str:
    """How many comparisons get the same verdict on `metric` and on `other`: 'k of n'."""
    keys = ["background", "method", "baseline"]
    a = _fits(t, metric).set_index(keys)["verdict"]
    b = _fits(t, other).set_index(keys)["verdict"].reindex(a.index)
    return count(int((a == b).sum()), len(a))


@number
def flagged(t: Tables, flag) -> str:
    """Fits with `flag` True ('singular'), or False for 'not_converged': 'k of n'."""
    m = _fits(t)
    if flag == "not_converged":
        hit = ~m["converged"].astype(bool)
    elif flag in ("singular", "converged", "hessian_pd"):
        hit = m[flag].astype(bool)
    else:
        raise ReportError(f"flag={flag!r}: choose 'singular', 'converged', 'hessian_pd' or 'not_converged'")
    return count(int(hit.sum()), len(m))


@number
def not_converged(t: Tables) -> str:
    """The fits that did not converge: 'MRI Grad-CAM vs U-Net on AUPRC'."""
    m = _fits(t)
    rows = m[~m["converged"].astype(bool)]
    if rows.empty:
        return "none"
    return join([f"{BACKGROUND_LABELS[r.background]} {label(r.method)} vs {label(r.baseline)} on "
                 f"{METRIC_LABELS[r.metric]}" for r in rows.itertuples()])


@number
def p_value(t: Tables, background, metric, method, baseline, which="adjusted") -> str:
    """One comparison's p value, Holm-adjusted (which=adjusted) or raw."""
    if which not in ("adjusted", "raw"):
        raise ReportError(f"which={which!r}: choose 'adjusted' or 'raw'")
    m = _fits(t, metric)
    row = m[(m["background"] == background) & (m["method"] == method) & (m["baseline"] == baseline)]
    if len(row) != 1:
        raise ReportError(f"localization_mixed_models: no row {(background, metric, method, baseline)}")
    return sci(row["p_value" if which == "adjusted" else "p_value_unadjusted"].iloc[0])


# --- blocks

def _runs_note(all_runs: pd.DataFrame, bg: str, architecture: str) -> str:
    """' (best of n; mean ± SD over runs)' when the architecture has several runs, else ''."""
    acc = all_runs[(all_runs["background"] == bg) & (all_runs["architecture"] == architecture)]["holdout_accuracy"]
    if len(acc) < 2:
        return ""
    return f" (best of {len(acc)}; {100 * acc.mean():.2f} ± {100 * acc.std(ddof=1):.2f} %)"


@block
def accuracy_table(t: Tables) -> str:
    """Holdout accuracy of the selected (best) run of each architecture (U-Net: and Dice);
    with several runs, their number and mean ± SD (sample SD)."""
    everything = t.accuracy
    a = everything[everything["selected"].astype(bool)] if "selected" in everything.columns else everything
    lines = ["| background | VGG-like holdout accuracy | DenseNet (small) | U-Net (image-level / Dice) |",
             "|---|---|---|---|"]
    for bg in BACKGROUND_LABELS:
        rows = a[a["background"] == bg].set_index("architecture")
        if rows.empty:
            continue
        missing = {"vgg", "densenet_small", "unet"} - set(rows.index)
        if missing or rows.index.duplicated().any():
            raise ReportError(f"accuracy: background {bg!r} needs one selected run of vgg, densenet_small and "
                              f"unet; missing {sorted(missing)} or duplicated")
        unet = rows.loc["unet"]
        lines.append(f"| {BACKGROUND_LABELS[bg]} | {percent(rows.loc['vgg', 'holdout_accuracy'])}"
                     f"{_runs_note(everything, bg, 'vgg')} | "
                     f"{percent(rows.loc['densenet_small', 'holdout_accuracy'])}"
                     f"{_runs_note(everything, bg, 'densenet_small')} | "
                     f"{percent(unet['holdout_accuracy'])} / {fixed(unet['holdout_dice'])}{_runs_note(everything, bg, 'unet')} |")
    return "\n".join(lines) + "\n"


@block
def budding_table(t: Tables) -> str:
    """Budding et al.'s eight methods, trained classifier: mean ROC-AUC, mAP, PREC99."""
    cols = [(bg, metric) for bg in _backgrounds(t) for metric in ("roc_auc", "ap", "prec99")]
    names = {"roc_auc": "ROC-AUC", "ap": "mAP", "prec99": "PREC99"}
    lines = ["| method | " + " | ".join(f"{BACKGROUND_LABELS[bg]} {names[m]}" for bg, m in cols) + " |",
             "|---" * (len(cols) + 1) + "|"]
    for method in BUDDING_METHODS:
        lines.append(f"| {label(method)} | " + " | ".join(fixed(t.mean(bg, 'trained', method, m)) for bg, m in cols)
                     + " |")
    return "\n".join(lines) + "\n"


def _statistic(x) -> str:
    """A ledger statistic as stored (4 decimals); ranks and counts as integers."""
    x = float(x)
    if not np.isfinite(x):
        raise ReportError(f"claims: statistic {x} is not finite")
    return str(int(x)) if x == int(x) else f"{x:.4f}"


def _cell(text) -> str:
    return "-" if pd.isna(text) or not str(text).strip() else str(text).replace("|", "\\|")


@block
def claims_table(t: Tables, paper: str = "all", section: str = "all") -> str:
    """The claims ledger (tables/claims.csv) of one paper and paper.md section (or all): the
    claim, what the paper reports, our statistic (pooled over runs; per run when there are
    several) and the verdict over runs with how many runs it holds in."""
    c = t.claims
    for col, want in (("paper", paper), ("section", section)):
        have = sorted(set(c[col].astype(str)))
        if want != "all":
            if want not in have:
                raise ReportError(f"{col}={want!r}: the ledger has {have} (or 'all')")
            c = c[c[col].astype(str) == want]
    runs = [col[len("holds_"):] for col in c.columns if col.startswith("holds_") and col != "holds_pooled"]
    lines = ["| claim | paper | the paper reports | our statistic | here | verdict |", "|---|---|---|---|---|---|"]
    for r in c.itertuples(index=False):
        row = r._asdict()
        have = [run for run in runs if not pd.isna(row[f"holds_{run}"])]
        here = _statistic(row["statistic_pooled"])
        if len(have) > 1:
            here += " pooled; per run " + ", ".join(f"{_statistic(row[f'statistic_{run}'])} (run {run})"
                                                    for run in have)
        held = sum(str(row[f"holds_{run}"]) == "True" for run in have)
        lines.append(f"| {_cell(row['claim'])} | {_cell(row['paper'])} | {_cell(row['paper_value'])} | "
                     f"{_cell(row['statistic'])} | {here} | {row['verdict']} ({held} of {len(have)}) |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- markers

BLOCK_RE = re.compile(r"<!-- report:(?P<name>[\w.-]+)(?P<args>(?: [^>\n]*?)?) -->\n(?P<body>.*?)"
                      r"<!-- /report:(?P=name) -->", re.S)
INLINE_RE = re.compile(r"<!-- n:(?P<spec>[^>]*?) -->(?P<body>[^\n]*?)<!-- /n -->")
STATEMENT_RE = re.compile(r"<!-- s:(?P<spec>(?:(?!-->).)*?) -->(?P<body>.*?)<!-- /s -->", re.S)
OPENERS = (re.compile(r"<!-- report:"), re.compile(r"<!-- n:"), re.compile(r"<!-- s:"))
# The documents whose markers `report` refreshes and checks.
DOCUMENTS = ("paper.md", "README.md")


@dataclass
class Part:
    """One generated part or guarded statement of a document and what the tables give for it."""

    kind: str  # "block", "n" or "s" (a guarded statement)
    spec: str  # block name, "generator arg ..." of a number, or a statement's condition
    line: int
    start: int  # span of the body in the text
    end: int
    body: str
    expected: str | None = None  # None: could not be generated (or a statement)
    error: str | None = None
    holds: bool | None = None  # a statement's verdict (None: could not be evaluated)
    detail: str = ""  # a statement's evaluated condition
    document: str = "paper.md"

    @property
    def name(self) -> str:
        marker = {"block": "report", "n": "n", "s": "s"}[self.kind]
        return f"{marker}:{self.spec} ({self.document} line {self.line})"

    @property
    def differs(self) -> bool:
        if self.kind == "s":
            return self.holds is not True
        return self.expected is None or self.expected != self.body

    @property
    def sentence(self) -> str:
        """The statement's text with its number markers reduced to their numbers."""
        text = INLINE_RE.sub(lambda m: m["body"], self.body)
        return " ".join(text.split())


def _call(fn: Callable[..., str], t: Tables, words: list[str], spec: str) -> str:
    args = [w for w in words if "=" not in w]
    kwargs = dict(w.split("=", 1) for w in words if "=" in w)
    try:
        inspect.signature(fn).bind(t, *args, **kwargs)
    except TypeError as err:
        raise ReportError(f"{spec!r}: {err}; signature {fn.__name__}{inspect.signature(fn)}") from None
    return fn(t, *args, **kwargs)


def generate(t: Tables, spec: str) -> str:
    """The text of a number generator call ``"generator arg ... key=value"``."""
    words = spec.split()
    if not words or words[0] not in NUMBERS:
        raise ReportError(f"unknown number generator {words[0] if words else ''!r}; valid: {sorted(NUMBERS)}")
    return _call(NUMBERS[words[0]], t, words[1:], spec)


# --- statements

OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "has")
CONDITION_RE = re.compile(r"^(?P<lhs>.+?)\s+(?P<op>==|!=|<=|>=|<|>|has)\s+(?P<rhs>.+)$")
_COUNT = re.compile(r"^(\d+) of (\d+)$")
_NUMBER = r"-?\d+(?:\.\d+)?(?:e-?\d+)?"
_RANGE = re.compile(rf"^({_NUMBER})\s*(?:-|to)\s*({_NUMBER})$")
_SINGLE = re.compile(rf"^({_NUMBER})\s*%?(?:\s+\(.*\))?$", re.S)  # a note in brackets after it is left out


def _numbers(text: str) -> tuple[float, float] | None:
    """(low, high) of a generated text: a number, a percentage, a count (k, k) or a range."""
    text = text.strip()
    if m := _COUNT.match(text):
        return float(m[1]), float(m[1])
    if m := _RANGE.match(text):
        return float(m[1]), float(m[2])
    if m := _SINGLE.match(text):
        return float(m[1]), float(m[1])
    return None


def _compare(left: str, op: str, right: str, right_is_text: bool) -> bool:
    if op == "has":
        return right in left
    count = _COUNT.match(left.strip())
    if right in ("all", "none") and not right_is_text:
        if not count or op not in ("==", "!="):
            raise ReportError(f"'{right}' compares a 'k of n' count with == or !=; got {left!r} {op} {right}")
        k, n = int(count[1]), int(count[2])
        return (k == (n if right == "all" else 0)) == (op == "==")
    if right_is_text:
        if op not in ("==", "!="):
            raise ReportError(f"a quoted text compares with ==, != or has; got {op}")
        return (left.strip() == right) == (op == "==")
    lo_hi, target = _numbers(left), _numbers(right)
    if lo_hi is None or target is None:
        if op in ("==", "!="):
            return (left.strip() == right.strip()) == (op == "==")
        raise ReportError(f"{op} needs numbers; got {left!r} and {right!r}")
    lo, hi = lo_hi
    x = target[0]
    if op in ("==", "!="):
        if lo != hi:
            raise ReportError(f"{op} compares one number; {left!r} is a range")
        return (lo == x) == (op == "==")
    return {"<": hi < x, "<=": hi <= x, ">": lo > x, ">=": lo >= x}[op]


def evaluate_condition(t: Tables, condition: str) -> tuple[bool, str]:
    """Whether a statement's condition holds on the tables, and what each side gave."""
    results, details = [], []
    for clause in (c.strip() for c in condition.split(" ; ")):
        m = CONDITION_RE.match(clause)
        if not m:
            raise ReportError(f"condition {clause!r}: expected 'GENERATOR args OP VALUE' with OP one of "
                              f"{list(OPERATORS)}")
        left = generate(t, m["lhs"].strip())
        rhs = m["rhs"].strip()
        quoted = len(rhs) >= 2 and rhs[0] == rhs[-1] and rhs[0] in "'\""
        if quoted:
            right = rhs[1:-1]
        elif rhs.startswith("{") and rhs.endswith("}"):
            right = generate(t, rhs[1:-1].strip())
        else:
            right = rhs
        ok = _compare(left, m["op"], right, quoted)
        results.append(ok)
        details.append(f"{m['lhs'].strip()} gave {left!r} {m['op']} {right!r}: {'holds' if ok else 'FALSE'}")
    return all(results), "; ".join(details)


def parts(text: str, t: Tables, document: str = "paper.md") -> list[Part]:
    """Every generated part and guarded statement of `text`, with what the tables give."""
    found = []

    def line_of(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    for m in BLOCK_RE.finditer(text):
        found.append(Part("block", f"{m['name']}{m['args']}".strip(), line_of(m.start()),
                          m.start("body"), m.end("body"), m["body"], document=document))
    for m in INLINE_RE.finditer(text):
        found.append(Part("n", m["spec"].strip(), line_of(m.start()), m.start("body"), m.end("body"), m["body"],
                          document=document))
    for m in STATEMENT_RE.finditer(text):
        if "<!-- s:" in m["body"]:
            raise ReportError(f"{document}: a statement inside a statement on line {line_of(m.start())}")
        found.append(Part("s", " ".join(m["spec"].split()), line_of(m.start()), m.start("body"), m.end("body"),
                          m["body"], document=document))
    for opener, kind in zip(OPENERS, ("block", "n", "s")):
        closed = len({p.start for p in found if p.kind == kind})
        if len(opener.findall(text)) != closed:
            lines = [line_of(o.start()) for o in opener.finditer(text)]
            raise ReportError(f"{document}: {len(lines) - closed} unclosed or malformed {kind} marker(s); "
                              f"openers on lines {lines}")
    for p in found:
        try:
            if p.kind == "block":
                words = p.spec.split()
                if words[0] not in BLOCKS:
                    raise ReportError(f"unknown block generator {words[0]!r}; valid: {sorted(BLOCKS)}")
                p.expected = _call(BLOCKS[words[0]], t, words[1:], p.spec)
            elif p.kind == "n":
                p.expected = generate(t, p.spec)
            else:
                p.holds, p.detail = evaluate_condition(t, p.spec)
        except ReportError as err:
            p.error = str(err)
    return sorted(found, key=lambda p: p.start)


def render(text: str, t: Tables, document: str = "paper.md") -> str:
    """`text` with every generated part rewritten; a part that cannot be generated raises.
    Statements are not rewritten: their numbers are number markers of their own."""
    found = [p for p in parts(text, t, document) if p.kind != "s"]
    bad = [p for p in found if p.expected is None]
    if bad:
        raise ReportError("; ".join(f"{p.name}: {p.error}" for p in bad))
    out, pos = [], 0
    for p in found:
        out += [text[pos:p.start], p.expected]
        pos = p.end
    return "".join(out) + text[pos:]


def _documents(paper: Path | None) -> list[Path]:
    """paper.md (or `paper`) and, with the default paper, README.md."""
    if paper:
        if not Path(paper).is_file():
            raise ReportError(f"--paper {paper}: no such file")
        return [Path(paper)]
    root = paths.repo_root()
    return [root / name for name in DOCUMENTS if (root / name).exists()]


def all_parts(paper: Path | None = None, tables_dir: Path | None = None) -> list[Part]:
    t = Tables(tables_dir)
    return [p for doc in _documents(paper) for p in parts(doc.read_text(), t, doc.name)]


def check(paper: Path | None = None, tables_dir: Path | None = None) -> list[Part]:
    """The generated parts that differ from the tables (or cannot be generated) and the
    statements the tables do not support, in paper.md and README.md (or in `paper`)."""
    return [p for p in all_parts(paper, tables_dir) if p.differs]


def refresh(paper: Path | None = None, tables_dir: Path | None = None) -> list[Part]:
    """Rewrite the generated parts from the tables (atomically); return the changed ones."""
    t = Tables(tables_dir)
    changed = []
    for doc in _documents(paper):
        text = doc.read_text()
        changed += [p for p in parts(text, t, doc.name) if p.kind != "s" and p.differs]
        new = render(text, t, doc.name)
        if new != text:
            atomic.write_text(doc, new)
    return changed


def statements(paper: Path | None = None, tables_dir: Path | None = None) -> list[str]:
    """One line per generated part and guarded statement: status, where, what."""
    lines = []
    found = all_parts(paper, tables_dir)
    for p in found:
        if p.kind == "s":
            status = "error" if p.error else ("holds" if p.holds else "FALSE")
            lines.append(f"{status:9} guarded   {p.document}:{p.line}  {_short(p.sentence, 90)}  [{p.error or p.detail}]")
        else:
            status = "error" if p.expected is None else ("differs" if p.differs else "current")
            what = p.spec if p.kind == "block" else f"{p.spec} = {_short(p.body, 40)}"
            lines.append(f"{status:9} generated {p.document}:{p.line}  {'report' if p.kind == 'block' else 'n'}:{what}")
    n_s = sum(p.kind == "s" for p in found)
    lines.append(f"{n_s} guarded statement(s) ({sum(p.kind == 's' and p.holds is True for p in found)} hold), "
                 f"{len(found) - n_s} generated part(s) ({sum(p.kind == 'block' for p in found)} tables, "
                 f"{sum(p.kind == 'n' for p in found)} numbers); {sum(p.differs for p in found)} to fix")
    return lines


def main(paper: Path | None = None, tables_dir: Path | None = None, check_only: bool = False,
         list_statements: bool = False) -> int:
    """``python -m salbench report [--check | --statements]``: 0 if the documents are (now)
    what the tables give and every statement holds."""
    if list_statements:
        lines = statements(paper, tables_dir)
        print("\n".join(lines))
        return 0 if lines[-1].endswith("; 0 to fix") else 1
    if check_only:
        bad = check(paper, tables_dir)
        for p in bad:
            if p.kind == "s":
                why = p.error or p.detail
                print(f"false: {p.name}: {_short(p.sentence, 120)!s} -- {why}")
                continue
            what = p.error if p.expected is None else f"has {_short(p.body)}, tables give {_short(p.expected)}"
            print(f"differs: {p.name}: {what}")
        if bad:
            n_s = sum(p.kind == "s" for p in bad)
            print(f"{len(bad) - n_s} generated part(s) differ from the tables (run `python -m salbench report`); "
                  f"{n_s} statement(s) the tables do not support (rewrite them)")
        return 1 if bad else 0
    changed = refresh(paper, tables_dir)
    for p in changed:
        print(f"rewrote {p.name}")
    print(f"{len(changed)} generated part(s) rewritten")
    false = [p for p in check(paper, tables_dir) if p.kind == "s"]
    for p in false:
        print(f"false: {p.name}: {_short(p.sentence, 120)} -- {p.error or p.detail}")
    return 1 if false else 0


def _short(s: str, width: int = 60) -> str:
    s = " ".join(s.split())
    return repr(s if len(s) <= width else s[:width - 3] + "...")



# Sections 2 and 3's generators and the general table queries register themselves in
# BLOCKS and NUMBERS.
from salbench import report_queries, report_readme, report_sections  # noqa: E402,F401
