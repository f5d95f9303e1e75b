"""General number generators over any published table, for guarded statements and numbers
in paper.md and README.md (registered in ``report.NUMBERS`` on import).

Filters: every keyword that is not a named parameter is ``column=value`` and keeps the
rows whose cell matches: the text, or the number when both parse as numbers (``step=10``
matches 10, ``selected=True`` a bool); ``+`` stands for a space, ``|`` separates
alternatives, ``@arun`` / ``@budding`` / ``@tomsett`` expand to those papers' methods,
``*`` is any non-missing value, and ``max`` / ``min`` keep the rows where that column is
largest / smallest among the rows the other filters left (``step=max``: the last
step). An unknown column or a filter that leaves no row raises ``ReportError``.

Comparisons inside arguments use words (eq ne lt le gt ge contains), because a
condition's own operators (``<``, ``has``, ...) split it.
"""

from __future__ import annotations

import fnmatch
import json

import numpy as np
import pandas as pd

from salbench.papers import ARUN_METHODS, BUDDING_METHODS, TOMSETT_METHODS
from salbench.report import TIE, ReportError, Tables, count, fixed, join, label, number, value_range

ALIASES = {"@arun": list(ARUN_METHODS), "@budding": list(BUDDING_METHODS), "@tomsett": list(TOMSETT_METHODS)}
OPS = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
       "ge": np.greater_equal}


def _load(t: Tables, table: str) -> pd.DataFrame:
    return t.claims if table == "claims" else t.read(table)


def _match(series: pd.Series, value: str) -> pd.Series:
    wanted: list[str] = []
    for v in value.split("|"):
        wanted += ALIASES.get(v, [v.replace("+", " ")])
    if wanted == ["*"]:
        return series.notna()
    ok = series.astype(str).isin(wanted)
    num = pd.to_numeric(series, errors="coerce")
    for w in wanted:
        try:
            ok |= num.notna() & np.isclose(num, float(w))
        except ValueError:
            pass
    return ok


def _filter(df: pd.DataFrame, filters: dict, table: str) -> pd.DataFrame:
    for col in filters:
        if col not in df.columns:
            raise ReportError(f"{table} has no column {col!r}; columns {list(df.columns)}")
    for col, value in filters.items():
        if value not in ("max", "min"):
            df = df[_match(df[col], value).to_numpy()]
    for col, value in filters.items():
        if value in ("max", "min"):
            df = df[df[col] == (df[col].max() if value == "max" else df[col].min())]
    if df.empty:
        raise ReportError(f"{table}: no row matches {filters}")
    return df


def _pairs(spec: str) -> dict:
    """'col:value,col:value' -> filters."""
    try:
        return dict(p.split(":", 1) for p in spec.split(",") if p) if spec else {}
    except ValueError:
        raise ReportError(f"{spec!r}: expected 'column:value,column:value'") from None


def _values(df: pd.DataFrame, column: str, by: str = "", stat: str = "mean") -> pd.Series:
    """The column's finite values, or their mean (median) per group of ``by`` columns;
    ``column`` may be an fnmatch pattern (``snr_[bfp]*``, without ``by``): every matching
    column's values together."""
    if any(ch in column for ch in "*?["):
        cols = [c for c in df.columns if fnmatch.fnmatchcase(c, column)]
        if not cols or by:
            raise ReportError(f"column pattern {column!r} matches no column, or is used with by=")
        return pd.concat([pd.to_numeric(df[c], errors="coerce") for c in cols]).dropna()
    if column not in df.columns:
        raise ReportError(f"no column {column!r}; columns {list(df.columns)}")
    vals = pd.to_numeric(df[column], errors="coerce")
    if not by:
        return vals.dropna()
    keys = by.split(",")
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise ReportError(f"by={by!r}: no column {missing}; columns {list(df.columns)}")
    if stat not in ("mean", "median"):
        raise ReportError(f"stat={stat!r}: choose 'mean' or 'median'")
    g = vals.groupby([df[k] for k in keys])
    return (g.median() if stat == "median" else g.mean()).dropna()


@number
def table_range(t: Tables, table, column, by="", stat="mean", digits="3", **filters) -> str:
    """'lo-hi' of a column over the filtered rows (with ``by``: of the group means); one value
    when both ends print the same."""
    v = _values(_filter(_load(t, table), filters, table), column, by, stat)
    if v.empty:
        raise ReportError(f"{table}.{column}: no finite value for {filters}")
    lo, hi = fixed(v.min(), digits), fixed(v.max(), digits)
    return lo if lo == hi else f"{lo}-{hi}"


@number
def table_count(t: Tables, table, column, op, value, by="", **filters) -> str:
    """'k of n': filtered rows (with ``by``: group means) whose column satisfies ``op value``
    (eq ne lt le gt ge on numbers; eq ne contains on text; ``missing`` counts empty cells)."""
    df = _filter(_load(t, table), filters, table)
    if column not in df.columns:
        raise ReportError(f"{table} has no column {column!r}")
    if op == "missing":
        return count(int(df[column].isna().sum()), len(df))
    numeric = pd.to_numeric(df[column], errors="coerce")
    if op == "contains" or (op in ("eq", "ne") and not by and numeric.isna().any()):
        text, target = df[column].astype(str), value.replace("+", " ")
        hit = text.str.contains(target, regex=False) if op == "contains" else (text == target) == (op == "eq")
        return count(int(hit.sum()), len(df))
    if op not in OPS:
        raise ReportError(f"op={op!r}; valid: {sorted(OPS)}, contains, missing")
    v = _values(df, column, by)
    return count(int(OPS[op](v.to_numpy(), float(value)).sum()), len(v))


@number
def table_values(t: Tables, table, column, digits="", **filters) -> str:
    """The filtered rows' cells, in table order, joined ('a, b and c')."""
    out = []
    for x in _filter(_load(t, table), filters, table)[column]:
        num = pd.to_numeric(pd.Series([x]), errors="coerce").iloc[0]
        if pd.isna(num):
            out.append(str(x))
        elif digits:
            out.append(fixed(float(num), digits))
        elif float(num).is_integer():
            out.append(f"{int(num):,}")
        else:
            out.append(str(x))
    return join(out)


@number
def table_rank(t: Tables, table, column, group, target, which="high", **filters) -> str:
    """'k of n': rank of ``target``'s mean among the group means (1 = highest, or lowest
    with which=low; means within ``TIE`` share the best rank)."""
    means = _values(_filter(_load(t, table), filters, table), column, group)
    if target not in means.index:
        raise ReportError(f"{table}: no {group} {target!r} among {list(means.index)}")
    mine = means[target]
    ahead = means > mine + TIE if which == "high" else means < mine - TIE
    return count(1 + int(ahead.sum()), len(means))


@number
def table_extreme(t: Tables, table, column, group, which="max", digits="3", **filters) -> str:
    """The group(s) with the largest (smallest) mean, 'Name (value)'; ties named together."""
    means = _values(_filter(_load(t, table), filters, table), column, group)
    if which not in ("max", "min"):
        raise ReportError(f"which={which!r}: choose 'max' or 'min'")
    best = means.max() if which == "max" else means.min()
    tied = [label(str(k)) for k, v in means.items() if abs(v - best) <= TIE]
    return f"{join(sorted(tied))} ({fixed(best, digits)})"


@number
def table_gap(t: Tables, table, column, by, left, right="", right_table="", right_column="", op="minus",
              exclude="", which="range", digits="3") -> str:
    """Per group of ``by``: mean of ``column`` over the rows matching ``left``
    ('col:value,...') minus (op=ratio: over) the mean of ``right_column`` over
    ``right_table``'s rows matching ``right`` (defaults: the same table, column and, in the
    same table, filters); groups on both sides only, ``exclude`` drops groups written as
    'v1:v2'. Returns 'lo-hi' of the gaps, or their min / max."""
    rt, rc = right_table or table, right_column or column
    lf = _pairs(left)
    rf = _pairs(right) if right else (lf if rt == table else {})
    lhs = _values(_filter(_load(t, table), lf, table), column, by)
    rhs = _values(_filter(_load(t, rt), rf, rt), rc, by)
    both = lhs.index.intersection(rhs.index)
    if op not in ("minus", "ratio"):
        raise ReportError(f"op={op!r}: choose 'minus' or 'ratio'")
    d = (lhs[both] - rhs[both]) if op == "minus" else (lhs[both] / rhs[both])
    drop = set(filter(None, exclude.split(",")))
    keys = [":".join(map(str, k if isinstance(k, tuple) else (k,))) for k in d.index]
    d = d[[k not in drop for k in keys]]
    if d.empty:
        raise ReportError(f"table_gap: no group of {by} on both sides")
    if which in ("min", "max"):
        return fixed(d.min() if which == "min" else d.max(), digits)
    if which != "range":
        raise ReportError(f"which={which!r}: choose 'range', 'min' or 'max'")
    return value_range(list(d), digits)


# --------------------------------------------------------------------------- more queries


@number
def table_nunique(t: Tables, table, column, by="", **filters) -> str:
    """How many distinct non-missing values ``column`` takes over the filtered rows; with
    ``by`` (comma-separated columns): per group, as one number when every group has the same
    count, else 'lo-hi' ("3": three runs on every background)."""
    df = _filter(_load(t, table), filters, table)
    if column not in df.columns:
        raise ReportError(f"{table} has no column {column!r}; columns {list(df.columns)}")
    if not by:
        return str(int(df[column].nunique()))
    keys = by.split(",")
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise ReportError(f"by={by!r}: no column {missing}; columns {list(df.columns)}")
    n = df.groupby(keys)[column].nunique()
    lo, hi = int(n.min()), int(n.max())
    return str(lo) if lo == hi else f"{lo}-{hi}"


@number
def table_unique(t: Tables, table, column, **filters) -> str:
    """The distinct non-missing values of ``column`` over the filtered rows, in order of first
    appearance, joined ('a, b and c')."""
    df = _filter(_load(t, table), filters, table)
    if column not in df.columns:
        raise ReportError(f"{table} has no column {column!r}; columns {list(df.columns)}")
    values = list(dict.fromkeys(str(v) for v in df[column].dropna()))
    if not values:
        raise ReportError(f"{table}.{column}: no value for {filters}")
    return join(values)


def _provenance(t: Tables) -> dict:
    """``tables/provenance.json``: file name -> its record."""
    path = t.folder / "provenance.json"
    if not path.exists():
        raise ReportError(f"{path}: no such file")
    return json.loads(path.read_text())


@number
def provenance(t: Tables, field, which="values", only="", skip="") -> str:
    """A field of ``tables/provenance.json`` (cpu, git_sha, profile, seed, python, machine) over
    the files it records (``only``: those whose name starts with one of these comma-separated
    prefixes; ``skip``: leave those out): the distinct values joined (which=values), or how
    many distinct values there are (which=count: "1" when the files come from one run)."""
    entries = _provenance(t)
    keep = tuple(filter(None, only.split(",")))
    drop = tuple(filter(None, skip.split(",")))
    entries = {name: e for name, e in entries.items()
               if (not keep or name.startswith(keep)) and not (drop and name.startswith(drop))}
    if not entries:
        raise ReportError(f"provenance.json: no entry left (only={only!r}, skip={skip!r})")
    missing = sorted(name for name, e in entries.items() if field not in e)
    if missing:
        raise ReportError(f"provenance.json: no field {field!r} for {missing}")
    values = list(dict.fromkeys(str(e[field]) for e in entries.values()))
    if which == "count":
        return str(len(values))
    if which != "values":
        raise ReportError(f"which={which!r}: choose 'values' or 'count'")
    return join(values)


@number
def max_abs_gap(t: Tables, model, metric, minus, exclude="", digits="3") -> str:
    """Largest |mean(metric) - mean(minus)| over the backgrounds and every method of `model`
    (the selected run), constant maps included; ``exclude``
    (comma-separated) leaves out a method on every background ('xrai') or on one
    ('perlin:grad_cam')."""
    drop = set(filter(None, exclude.split(",")))
    bgs = [bg for bg in ("perlin", "mri") if bg in set(t.means.index.unique(0))]
    known = {m for bg in bgs for m in t.methods(model, bg)}
    unknown = sorted(d for d in drop if d.split(":")[-1] not in known)
    if unknown:
        raise ReportError(f"exclude: no method {unknown} of model {model!r}; methods {sorted(known)}")
    gaps = [abs(t.mean(bg, model, m, metric) - t.mean(bg, model, m, minus))
            for bg in bgs for m in t.methods(model, bg) if m not in drop and f"{bg}:{m}" not in drop]
    if not gaps:
        raise ReportError(f"max_abs_gap: every method of {model!r} excluded")
    return fixed(max(gaps), digits)


@number
def run_spread(t: Tables, background, rank="1", metric="ap", digits="3") -> str:
    """The method with the rank-th largest spread (max - min over classifier runs) of its mean
    trained-map ``metric`` on the images every run was scored on, as in the run-spread table
    of section 1.6: 'PatternNet (0.344)'; methods with the same spread are named together."""
    from salbench.tables import images_in_every_run

    s = t.read("localization_scores")
    if metric not in s.columns:
        raise ReportError(f"localization_scores has no metric {metric!r}")
    s = s[(s["model"] == "trained") & (s["background"] == background)]
    if s.empty or "run" not in s.columns or s["run"].nunique() < 2:
        raise ReportError(f"localization_scores: fewer than two runs of trained maps on {background!r}")
    s = images_in_every_run(s)
    means = s.groupby(["method", "run"])[metric].mean().unstack()
    spread = (means.max(axis=1) - means.min(axis=1)).round(int(digits))
    levels = sorted(spread.unique(), reverse=True)
    k = int(rank)
    if not 1 <= k <= len(levels):
        raise ReportError(f"rank={rank!r}: choose 1 to {len(levels)}")
    value = levels[k - 1]
    return f"{join(sorted(label(m) for m in spread.index[spread == value]))} ({fixed(value, digits)})"


@number
def run_verdicts_differing(t: Tables) -> str:
    """The verdicts that the classifier runs not selected give in the method-vs-baseline
    comparisons (localization_mixed_models) where they differ from the selected run's, joined
    ('uncertain'); 'none' when every run agrees with the selected one."""
    m = t.read("localization_mixed_models")
    if "run" not in m.columns or m["run"].nunique() < 2:
        raise ReportError("localization_mixed_models has one classifier run")
    keys = ["background", "metric", "method", "baseline"]
    chosen = m[m["selected"].astype(str) == "True"].set_index(keys)["verdict"]
    others = m[m["selected"].astype(str) != "True"]
    ref = chosen.reindex(pd.MultiIndex.from_frame(others[keys])).to_numpy()
    differ = others[others["verdict"].to_numpy() != ref]
    return join(sorted(differ["verdict"].unique())) if len(differ) else "none"


@number
def provenance_field(t: Tables, table: str, field: str, chars: str = "") -> str:
    """One field of ``tables/provenance.json`` for ``TABLE.csv`` (``table=all``: the value
    every table records, an error if they differ); ``chars=7`` keeps the first 7 characters
    (a short git SHA)."""
    entries = _provenance(t)
    names = sorted(entries) if table == "all" else [f"{table}.csv"]
    values = set()
    for name in names:
        if name not in entries or field not in entries[name]:
            raise ReportError(f"provenance.json: no {field!r} for {name!r}")
        values.add(str(entries[name][field]))
    if len(values) != 1:
        raise ReportError(f"provenance.json: {field!r} differs between tables: {sorted(values)}")
    value = values.pop()
    return value[: int(chars)] if chars else value


@number
def provenance_differ(t: Tables, table: str, field: str) -> str:
    """The tables (names without .csv) whose ``provenance.json`` ``field`` differs from
    TABLE's, joined ('a, b and c'), or 'none'."""
    mine = provenance_field(t, table, field)  # raises when provenance.json or the entry is missing
    entries = _provenance(t)
    other = [n.removesuffix(".csv") for n in sorted(entries) if str(entries[n].get(field)) != mine]
    return join(other) if other else "none"
