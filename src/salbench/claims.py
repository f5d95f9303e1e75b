"""The claims ledger: each paper claim paper.md compares with, computed from the tables (issue 14).

A ``Claim`` is a sentence from a paper with a function from the published tables
(name -> DataFrame, each with a ``run`` column for the training run) to our statistic
and a verdict per run and pooled over runs. ``ledger`` evaluates a list of claims into
one row per claim (``tables/claims.csv``); ``compare_claims`` compares two ledgers by
conclusion, not by number, and the method rankings of two summary tables by Kendall's
tau.

Why: across two training runs (or two CPUs) the per-method scores move a lot while
most conclusions do not (issue 14: PatternNet's mean AP on MRI went from 0.388 to
0.218 and flipped one claim); a reader needs to know which conclusions held.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from salbench import atomic, paths
from salbench import tables as table_specs
from salbench.stats import AGREEMENT, run_agreement

POOLED = "pooled"
RUN_COL = "run"
EVALUATION_COLUMNS = ("run", "statistic", "holds")
# A table without a ``run`` column holds one classifier run per background, the selected
# one (the best on holdout; fidelity and the trust cascades explain only it), which may be
# run 0 on one background and run 1 on the other: it is not any one run index.
SELECTED_RUN = "selected"
SELECTED_COL = "selected"
# Two means closer than this are tied (the per-image scores carry 6 decimals).
TIE = 1e-9


@dataclass(frozen=True)
class Claim:
    """One testable sentence of a paper and how to test it on our tables.

    ``evaluate(tables)`` returns a DataFrame with columns ``run, statistic, holds``: one
    row per training run and one with ``run == POOLED`` (the statistic over all runs).
    ``paper_value`` is what the paper reports for it, quoted as text (its numbers with
    their ± SD and dataset; "" where it gave none). ``statistic`` names what our number is.
    ``section``: the section of paper.md that discusses it.
    """

    id: str
    paper: str
    sentence: str
    statistic: str
    evaluate: Callable[[Mapping[str, pd.DataFrame]], pd.DataFrame]
    paper_value: str = ""
    section: str = ""


def rank(means: pd.Series, method: str, lowest: bool = False, tol: float = TIE) -> int:
    """1 = highest mean (lowest=True: 1 = lowest); means within ``tol`` of the method's
    (``TIE``, or the resolution of the scores) tie with it and share the best rank."""
    v = means[method]
    return 1 + int(((means < v - tol) if lowest else (means > v + tol)).sum())


def with_runs(t: pd.DataFrame) -> pd.DataFrame:
    """``t`` with its ``run`` column as text; a table without one is the selected run (``SELECTED_RUN``)."""
    t = t.copy()
    t[RUN_COL] = t[RUN_COL].astype(str) if RUN_COL in t.columns else SELECTED_RUN
    return t


def run_order(runs) -> list[str]:
    """Runs as text, numeric ones first in numeric order, ``pooled`` left out."""
    runs = {str(r) for r in runs} - {POOLED}
    return sorted(runs, key=lambda r: (0, int(r), "") if r.isdigit() else (1, 0, r))


class MissingTableError(KeyError):
    """A claim needs a table that was not given (e.g. a reference run made before it existed)."""


def _table(tables: Mapping[str, pd.DataFrame], name: str, columns: Sequence[str]) -> pd.DataFrame:
    if name not in tables:
        raise MissingTableError(f"table {name!r} not given; tables: {sorted(tables)}")
    t = with_runs(tables[name])
    missing = [c for c in columns if c not in t.columns]
    if missing:
        raise KeyError(f"table {name!r} lacks columns {missing}; it has {list(t.columns)}")
    return t


def _select(t: pd.DataFrame, where: Mapping[str, object], name: str) -> pd.DataFrame:
    """Rows matching every column -> value (a list or tuple value: any of them)."""
    mask = np.ones(len(t), dtype=bool)
    for col, value in where.items():
        mask &= (t[col].isin(list(value)) if isinstance(value, (list, tuple)) else t[col] == value).to_numpy()
    if not mask.any():
        raise ValueError(f"no row of table {name!r} matches {dict(where)}")
    return t[mask]


def mean_difference_claim(
    id: str,
    paper: str,
    sentence: str,
    table: str,
    metric: str,
    where_a: Mapping[str, object],
    where_b: Mapping[str, object],
    paper_value: str = "",
    weight: str | None = "n_images",
    statistic: str | None = None,
) -> Claim:
    """A claim "A scores higher than B on ``metric``", from a summary table with a ``run`` column.

    Per run, statistic = metric(A) - metric(B), where A and B are the single rows of
    that run matching ``where_a`` / ``where_b`` (column -> value); holds when it is > 0.
    Pooled: the same difference of the runs' values averaged over runs, weighted by
    the ``weight`` column (the images per run; unweighted if None), which for a mean
    score is the mean over all images of all runs. A direction claim without a test
    (ours): the papers state these as directions, and the per-run agreement is what
    tells a reader how firm it is. ``statistic`` labels the number (default: built
    from the filters). Rows with ``run == "pooled"`` in the table are ignored: the
    pooled value is computed here.
    """
    cols = [RUN_COL, metric, *where_a, *where_b] + ([weight] if weight else [])

    def evaluate(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
        t = _table(tables, table, list(dict.fromkeys(cols)))
        sides = {}
        for side, where in (("A", where_a), ("B", where_b)):
            s = _select(t[t[RUN_COL] != POOLED], where, table)
            dup = s[RUN_COL].duplicated()
            if dup.any():
                raise ValueError(f"table {table!r}: {dict(where)} matches more than one row in run "
                                 f"{s.loc[dup, RUN_COL].iloc[0]!r}; add a column to the filter")
            sides[side] = s.set_index(RUN_COL)
        runs = run_order(sides["A"].index.intersection(sides["B"].index))
        if not runs:
            raise ValueError(f"table {table!r}: {dict(where_a)} and {dict(where_b)} share no run")
        diff = sides["A"].loc[runs, metric].astype(float) - sides["B"].loc[runs, metric].astype(float)
        means = []
        for side in ("A", "B"):
            w = sides[side].loc[runs, weight].to_numpy(float) if weight else None
            means.append(np.average(sides[side].loc[runs, metric].to_numpy(float), weights=w))
        pooled = float(means[0] - means[1])
        out = pd.DataFrame({"run": list(runs), "statistic": diff.to_numpy(float)})
        out = pd.concat([out, pd.DataFrame({"run": [POOLED], "statistic": [pooled]})], ignore_index=True)
        out["holds"] = out["statistic"] > 0
        return out

    def label(where):
        return f"{metric}[{', '.join(f'{k}={v}' for k, v in where.items())}]"

    return Claim(id, paper, sentence, statistic or f"{label(where_a)} - {label(where_b)}", evaluate, paper_value)


def _evaluation(per_run: dict[str, float], pooled: float, holds: Callable[[float], bool]) -> pd.DataFrame:
    runs = run_order(per_run)
    out = pd.DataFrame({"run": [*runs, POOLED], "statistic": [float(per_run[r]) for r in runs] + [float(pooled)]})
    out["holds"] = np.array([bool(holds(x)) for x in out["statistic"]], dtype=bool)
    return out


def means_claim(
    id: str,
    paper: str,
    sentence: str,
    statistic: str,
    table: str,
    index: Sequence[str],
    values: Sequence[str],
    compute: Callable[[pd.DataFrame], float],
    holds: Callable[[float], bool],
    weight: str | None = "n_images",
    paper_value: str = "",
) -> Claim:
    """A claim computed from a table of means (e.g. ``localization_summary``) by ``compute``.

    Per run, ``compute`` gets that run's rows indexed by ``index`` (unique per run) with
    the ``values`` columns and returns the statistic; ``holds(statistic)`` is the
    verdict. Pooled: ``compute`` on the means over runs, weighted by the ``weight``
    column (images per run; unweighted if None), which for a mean score is the mean
    over all images of all runs (ours). Rows with ``run == "pooled"`` are ignored.
    """
    index, values = list(index), list(values)
    cols = [RUN_COL, *index, *values] + ([weight] if weight else [])

    def evaluate(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
        t = _table(tables, table, list(dict.fromkeys(cols)))
        t = t[t[RUN_COL] != POOLED]
        if t.empty:
            raise ValueError(f"table {table!r} has no rows for claim {id!r}")
        dup = t.duplicated([RUN_COL, *index])
        if dup.any():
            raise ValueError(f"table {table!r}: {dict(t.loc[dup, [RUN_COL, *index]].iloc[0])} occurs more than once; "
                             f"claim {id!r} needs one row per {[RUN_COL, *index]}")
        per_run = {r: compute(g.set_index(index)[values].sort_index()) for r, g in t.groupby(RUN_COL)}
        w = t[weight].astype(float) if weight else pd.Series(1.0, index=t.index)
        if (w <= 0).any() or w.isna().any():
            raise ValueError(f"table {table!r}: weight column {weight!r} must be positive; got {w.min()}")
        weighted = t[values].astype(float).mul(w, axis=0).assign(_w=w)
        sums = weighted.groupby([t[c] for c in index]).sum()
        pooled = sums[values].div(sums["_w"], axis=0).sort_index()
        return _evaluation(per_run, compute(pooled), holds)

    return Claim(id, paper, sentence, statistic, evaluate, paper_value)


def verdict_claim(
    id: str,
    paper: str,
    sentence: str,
    statistic: str,
    expected: Mapping[str, str],
    where: Mapping[str, object],
    table: str = "localization_mixed_models",
    keys: Sequence[str] = ("background", "metric", "method", "baseline"),
    verdict_col: str = "verdict",
    paper_value: str = "",
) -> Claim:
    """A claim that tests reach given verdicts: ``expected`` maps a method to its verdict
    (e.g. "pass" against the average mask), over the rows matching ``where``.

    Statistic: the number of those comparisons (one per background and method) whose
    verdict is not the expected one; the claim holds when it is 0. Every method must have
    a row in every background of every run. Pooled: the table's rows with ``run ==
    "pooled"`` where it has them (a test on all runs together); otherwise a comparison's
    pooled verdict is its verdict if every run reached the same one, else "differs
    between runs", which counts against the claim (ours).
    """
    keys = list(keys)
    methods = list(expected)

    def evaluate(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
        t = _table(tables, table, list(dict.fromkeys([RUN_COL, *keys, *where, verdict_col])))
        t = _select(t, {**where, "method": methods}, table)
        backgrounds = sorted(t["background"].unique())

        def mismatches(g: pd.DataFrame, run: str) -> float:
            have = set(zip(g["background"], g["method"]))
            missing = [(b, m) for b in backgrounds for m in methods if (b, m) not in have]
            if missing:
                raise ValueError(f"table {table!r}, run {run}: no {dict(where)} verdict for (background, method) "
                                 f"{missing[:3]}; claim {id!r} needs every one")
            if g.duplicated(keys).any():
                raise ValueError(f"table {table!r}, run {run}: {dict(where)} matches more than one row per {keys}")
            return float((g[verdict_col].astype(str) != g["method"].map(expected)).sum())

        runs = run_order(t[RUN_COL])
        per_run = {r: mismatches(t[t[RUN_COL] == r], r) for r in runs}
        pooled_rows = t[t[RUN_COL] == POOLED]
        if pooled_rows.empty:
            real = t[t[RUN_COL] != POOLED]
            agreed = real.groupby(keys, sort=True)[verdict_col].agg(
                lambda v: v.iloc[0] if v.astype(str).nunique() == 1 else "differs between runs").reset_index()
            pooled_rows = agreed
        return _evaluation(per_run, mismatches(pooled_rows, POOLED), lambda n: n == 0)

    return Claim(id, paper, sentence, statistic, evaluate, paper_value)


def tables_claim(
    id: str,
    paper: str,
    sentence: str,
    statistic: str,
    table_names: Sequence[str],
    compute: Callable[[Mapping[str, pd.DataFrame]], float],
    holds: Callable[[float], bool],
    paper_value: str = "",
    optional: Sequence[str] = (),
) -> Claim:
    """A claim computed by ``compute`` from several tables of one run.

    ``optional`` tables (run-independent, e.g. the measured resolution) are passed to
    ``compute`` whole where ``tables`` has them; ``compute`` decides what their absence means.

    Per run (the runs every table has), ``compute`` gets each table's rows of that
    run. Where some tables cover only the selected run (no ``run`` column), the others
    contribute their ``selected`` rows and the claim has that one run. Pooled:
    ``compute`` on all rows of all runs together (per-image tables pool their images;
    ours). ``holds(statistic)`` is the verdict.
    """
    names = list(table_names)

    def evaluate(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
        ts = {n: _table(tables, n, [RUN_COL]) for n in names}
        extra = {n: with_runs(tables[n]) for n in optional if n in tables}
        ts = {n: t[t[RUN_COL] != POOLED] for n, t in ts.items()}
        if any(set(t[RUN_COL]) == {SELECTED_RUN} for t in ts.values()):
            for n, t in ts.items():
                if set(t[RUN_COL]) != {SELECTED_RUN}:
                    if SELECTED_COL not in t.columns:
                        raise ValueError(f"claim {id!r}: table {n!r} has runs {run_order(t[RUN_COL])} but no "
                                         f"{SELECTED_COL!r} column to match the selected-run tables")
                    ts[n] = t[t[SELECTED_COL].astype(bool)].assign(**{RUN_COL: SELECTED_RUN})
        runs = set.intersection(*(set(t[RUN_COL]) for t in ts.values()))
        if not runs:
            raise ValueError(f"claim {id!r}: tables {names} share no run")
        per_run = {r: compute({**extra, **{n: t[t[RUN_COL] == r] for n, t in ts.items()}}) for r in run_order(runs)}
        pooled = per_run[next(iter(per_run))] if len(per_run) == 1 else compute({**extra, **ts})
        return _evaluation(per_run, pooled, holds)

    return Claim(id, paper, sentence, statistic, evaluate, paper_value)


def ledger(claims: Sequence[Claim], tables: Mapping[str, pd.DataFrame], skip_missing: bool = False) -> pd.DataFrame:
    """Evaluate ``claims`` on ``tables``: one row per claim (``tables/claims.csv``).

    Columns: ``claim_id, section, paper, claim, statistic, paper_value, n_runs``, then
    ``statistic_<run>`` per run and ``statistic_pooled``, ``holds_<run>`` per run and
    ``holds_pooled``, and ``verdict``: ``run_agreement`` of the per-run verdicts ("holds
    in every run" / "holds in some runs" / "holds in no run"). A claim evaluated on
    fewer runs than the others has NaN in the runs it lacks. With ``skip_missing``, a claim
    whose tables are not all given is left out (``compare`` on an older reference run).
    """
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise ValueError(f"claim ids must be unique; repeated: {sorted({i for i in ids if ids.count(i) > 1})}")
    rows, all_runs = [], []
    for c in claims:
        try:
            ev = c.evaluate(tables)
        except MissingTableError:
            if skip_missing:
                continue
            raise
        missing = [col for col in EVALUATION_COLUMNS if col not in ev.columns]
        if missing:
            raise ValueError(f"claim {c.id!r}: evaluate() returned no columns {missing}")
        runs = ev["run"].map(str)
        if (runs == POOLED).sum() != 1:
            raise ValueError(f"claim {c.id!r}: evaluate() must return exactly one row with run == {POOLED!r}")
        per_run = ev[runs != POOLED]
        if per_run.empty:
            raise ValueError(f"claim {c.id!r}: evaluate() returned no per-run rows")
        holds = per_run["holds"].to_numpy()
        if holds.dtype != bool:
            raise ValueError(f"claim {c.id!r}: holds must be booleans; got dtype {holds.dtype}")
        pooled = ev[runs == POOLED].iloc[0]
        row = {"claim_id": c.id, "section": c.section, "paper": c.paper, "claim": c.sentence, "statistic": c.statistic,
               "paper_value": str(c.paper_value), "n_runs": len(per_run)}
        for r, s, h in zip(runs[runs != POOLED], per_run["statistic"], holds):
            row[f"statistic_{r}"], row[f"holds_{r}"] = float(s), bool(h)
            if r not in all_runs:
                all_runs.append(r)
        row["statistic_pooled"], row["holds_pooled"] = float(pooled["statistic"]), bool(pooled["holds"])
        row["verdict"] = run_agreement(holds)
        rows.append(row)
    all_runs = run_order(all_runs)
    cols = ["claim_id", "section", "paper", "claim", "statistic", "paper_value", "n_runs",
            *[f"statistic_{r}" for r in all_runs], "statistic_pooled",
            *[f"holds_{r}" for r in all_runs], "holds_pooled", "verdict"]
    return pd.DataFrame(rows).reindex(columns=cols)


class ClaimComparison(NamedTuple):
    """``compare_claims``'s result."""

    claims: pd.DataFrame
    rankings: pd.DataFrame | None
    summary: str


def method_rankings(
    summary_a: pd.DataFrame,
    summary_b: pd.DataFrame,
    metrics: Sequence[str],
    group_cols: Sequence[str] = ("background", "model"),
    method_col: str = "method",
) -> pd.DataFrame:
    """Kendall's tau-b (``scipy.stats.kendalltau``) between two tables' method rankings per group and metric.

    Methods present in both tables are ranked by each metric (higher is better) within
    each group. Columns ``*group_cols, metric, n_methods, tau, p_value``; tau is NaN
    where fewer than two methods are shared.
    """
    group_cols = list(group_cols)
    for name, t in (("summary_a", summary_a), ("summary_b", summary_b)):
        missing = [c for c in [*group_cols, method_col, *metrics] if c not in t.columns]
        if missing:
            raise KeyError(f"{name} lacks columns {missing}; it has {list(t.columns)}")
    joined = summary_a.merge(summary_b, on=[*group_cols, method_col], suffixes=("_a", "_b"), validate="one_to_one")
    rows = []
    for key, g in joined.groupby(group_cols, sort=True) if group_cols else [((), joined)]:
        key = key if isinstance(key, tuple) else (key,)
        for m in metrics:
            a, b = g[f"{m}_a"].to_numpy(float), g[f"{m}_b"].to_numpy(float)
            ok = np.isfinite(a) & np.isfinite(b)
            if ok.sum() >= 2 and np.ptp(a[ok]) > 0 and np.ptp(b[ok]) > 0:
                res = sps.kendalltau(a[ok], b[ok])
                tau, p = float(res.statistic), float(res.pvalue)
            else:
                tau = p = float("nan")
            rows.append({**dict(zip(group_cols, key)), "metric": m, "n_methods": int(ok.sum()),
                         "tau": tau, "p_value": p})
    return pd.DataFrame(rows)


def compare_claims(
    ledger_a: pd.DataFrame,
    ledger_b: pd.DataFrame,
    summary_a: pd.DataFrame | None = None,
    summary_b: pd.DataFrame | None = None,
    *,
    metrics: Sequence[str] = ("mean_ap",),
    group_cols: Sequence[str] = ("background", "model"),
    method_col: str = "method",
) -> ClaimComparison:
    """Compare two ledgers by conclusion: which claims reach the same verdict.

    A claim's conclusion is its overall ``verdict`` (holds in every / some / no run)
    together with ``holds_pooled``; it reproduces when both are equal in the two
    ledgers. Statistics may differ by any amount. A claim in one ledger only does not
    reproduce ("missing"). ``claims``: ``claim_id, claim, verdict_a, verdict_b,
    holds_pooled_a, holds_pooled_b, reproduces``. With both summaries given,
    ``rankings`` is ``method_rankings`` over ``metrics``. ``summary``: one line, "N of M
    conclusions reproduce; differing: <id> (<a> -> <b>), ..." (or "differing: none").
    """
    for name, t in (("ledger_a", ledger_a), ("ledger_b", ledger_b)):
        missing = [c for c in ("claim_id", "claim", "verdict", "holds_pooled") if c not in t.columns]
        if missing:
            raise KeyError(f"{name} lacks columns {missing}; is it a ledger() table?")
        if t["claim_id"].duplicated().any():
            raise ValueError(f"{name} repeats claim ids {sorted(t.loc[t['claim_id'].duplicated(), 'claim_id'])}")
    if (summary_a is None) != (summary_b is None):
        raise ValueError("give both summaries (summary_a and summary_b) or neither")
    cols = ["claim_id", "claim", "verdict", "holds_pooled"]
    j = ledger_a[cols].merge(ledger_b[cols], on="claim_id", how="outer", suffixes=("_a", "_b"), sort=False)
    j["claim"] = j["claim_a"].where(j["claim_a"].notna(), j["claim_b"])
    for side in ("a", "b"):
        j[f"verdict_{side}"] = j[f"verdict_{side}"].astype(object).where(j[f"verdict_{side}"].notna(), "missing")
    same_verdict = j["verdict_a"] == j["verdict_b"]
    same_pooled = (j["holds_pooled_a"].astype(object) == j["holds_pooled_b"].astype(object))
    j["reproduces"] = (same_verdict & same_pooled & (j["verdict_a"] != "missing")).astype(bool)
    out = j[["claim_id", "claim", "verdict_a", "verdict_b", "holds_pooled_a", "holds_pooled_b", "reproduces"]]
    differing = []
    for _, r in out[~out["reproduces"]].iterrows():
        if r["verdict_a"] != r["verdict_b"]:
            differing.append(f"{r['claim_id']} ({r['verdict_a']} -> {r['verdict_b']})")
        else:
            differing.append(f"{r['claim_id']} (pooled holds {r['holds_pooled_a']} -> {r['holds_pooled_b']})")
    summary = (f"{int(out['reproduces'].sum())} of {len(out)} conclusions reproduce; differing: "
               + (", ".join(differing) if differing else "none"))
    rankings = None
    if summary_a is not None:
        rankings = method_rankings(summary_a, summary_b, metrics, group_cols, method_col)
    return ClaimComparison(out.reset_index(drop=True), rankings, summary)


# --------------------------------------------------------------------------- tables/claims.csv


def all_claims() -> tuple[Claim, ...]:
    """Every claim of the ledger: Budding's and Arun's utility claims (paper.md section 1),
    Tomsett's (section 2) and Arun's trust criteria (section 3)."""
    from dataclasses import replace

    # The catalogs import this module.
    from salbench import claims_budding_arun as utility
    from salbench import claims_tomsett_arun as trust

    return (*(replace(c, section="1.5") for c in utility.CLAIMS),
            *(replace(c, section="2") for c in trust.TOMSETT_CLAIMS),
            *(replace(c, section="3") for c in trust.ARUN_TRUST_CLAIMS))


def claim_tables() -> tuple[str, ...]:
    from salbench import claims_budding_arun as utility
    from salbench import claims_tomsett_arun as trust

    return tuple(dict.fromkeys((*utility.CLAIM_TABLES, *trust.CLAIM_TABLES, *trust.OPTIONAL_TABLES)))


def optional_claim_tables() -> tuple[str, ...]:
    """Tables a claim uses where a run has them (older runs lack them)."""
    from salbench import claims_tomsett_arun as trust

    return tuple(trust.OPTIONAL_TABLES)


def read_tables(tables_dir: Path | str | None = None, names: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
    """The tables the claims read, from a folder (default: this checkout's tables/)."""
    folder = Path(tables_dir) if tables_dir else paths.repo_root() / "tables"
    out = {}
    for name in names or claim_tables():
        path = folder / f"{name}.csv"
        if not path.exists():
            if names is None and name in optional_claim_tables():
                continue
            raise FileNotFoundError(f"{path}: no such table; the claims need {list(names or claim_tables())}")
        out[name] = table_specs.read_table(path, name)
    return out


def build_ledger(tables: Mapping[str, pd.DataFrame], claims: Sequence[Claim] | None = None,
                 skip_missing: bool = False) -> pd.DataFrame:
    """``ledger`` of every claim (``all_claims()``) on ``tables``."""
    return ledger(list(claims or all_claims()), tables, skip_missing=skip_missing)


def write_claims(tables_dir: Path | str | None = None) -> Path:
    """(Re)build ``<tables_dir>/claims.csv`` (and ``claims.md``) from the tables in that folder.

    Written atomically with the number format of ``tables.SPECS["claims"]``; the same
    tables give the same bytes.
    """
    folder = Path(tables_dir) if tables_dir else paths.repo_root() / "tables"
    df = build_ledger(read_tables(folder))
    spec = table_specs.get_spec("claims")
    spec.check(df, "the ledger")
    fmt = spec.float_format
    path = folder / "claims.csv"
    for target, text in ((path, df.to_csv(index=False, float_format=f"%{fmt}")),
                         (folder / "claims.md", df.to_markdown(index=False, floatfmt=fmt) + "\n")):
        atomic.write_text(target, text)
    return path


__all__ = [
    "AGREEMENT", "Claim", "ClaimComparison", "POOLED", "all_claims", "build_ledger", "claim_tables",
    "compare_claims", "ledger", "mean_difference_claim", "means_claim", "method_rankings", "rank", "read_tables",
    "run_order", "tables_claim", "verdict_claim", "with_runs", "write_claims",
]
