"""Compare a run's tables with a reference run (DESIGN: "end to end"), by number or by conclusion.

``python -m salbench compare`` reads every ``tables/*.csv`` of this checkout and the
same files of a reference (by default the committed ones, ``git show HEAD:tables/...``,
or a folder), joins rows on each table's key columns (``salbench.tables.SPECS``) and
reports, per table, rows present on one side only, the largest absolute difference of
every numeric column, and mismatches of the other columns (verdicts, flags).

Tolerance: 0 by default, because the same profile and seed give the same tables on
the same machine (bf16 training, thread scheduling and library versions may change
weights elsewhere; pass ``--tolerance`` for a cross-machine check). Columns that
measure the machine rather than the method (timings, warning texts) are not compared.

``python -m salbench compare --claims`` (``compare_conclusions``) compares what a reader
cares about instead: each claim's verdict (``salbench.claims``), each method-vs-baseline
verdict and the method rankings, and ends with one line saying how many conclusions
reproduce and which do not (issue 14: across CPUs the numbers move, most conclusions
do not).
"""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from salbench import paths, tables

# Wall-clock timings depend on machine load; the note holds fit warnings' text.
NOT_COMPARED = frozenset({"seconds_per_epoch", "note"})


@dataclass
class TableDiff:
    name: str
    only_new: int = 0
    only_reference: int = 0
    # column -> (max |difference|, number of rows beyond tolerance)
    numeric: dict[str, tuple[float, int]] = field(default_factory=dict)
    # column -> number of rows that differ
    other: dict[str, int] = field(default_factory=dict)
    missing: str | None = None  # the side without this table, if any
    incomparable: str | None = None  # why the two versions cannot be joined

    @property
    def ok(self) -> bool:
        return (self.missing is None and self.incomparable is None and not self.only_new and not self.only_reference
                and not any(n for _, n in self.numeric.values()) and not any(self.other.values()))

    def lines(self) -> list[str]:
        if self.missing:
            return [f"{self.name}: missing in {self.missing}"]
        if self.incomparable:
            return [f"{self.name}: cannot compare: {self.incomparable}"]
        head = f"{self.name}: {'same' if self.ok else 'DIFFERENT'}"
        out = [head]
        if self.only_new or self.only_reference:
            out.append(f"  rows only in this run: {self.only_new}; only in the reference: {self.only_reference}")
        for col, (biggest, n) in self.numeric.items():
            if biggest > 0:
                out.append(f"  {col}: max |difference| {biggest:.4g}, {n} row(s) beyond tolerance")
        for col, n in self.other.items():
            if n:
                out.append(f"  {col}: {n} row(s) differ")
        return out


def compare_table(name: str, new: pd.DataFrame, reference: pd.DataFrame, tolerance: float = 0.0) -> TableDiff:
    """Compare two versions of one table row by row on its key columns."""
    if tolerance < 0:
        raise ValueError(f"tolerance={tolerance}: must be >= 0")
    if name not in tables.SPECS:
        raise ValueError(f"table {name!r}: no key columns known; valid: {sorted(tables.SPECS)}")
    spec = tables.SPECS[name]
    keys = list(spec.keys)
    for side, df in (("this run", new), ("the reference", reference)):
        spec.check(df, side)
    merged = new.merge(reference, on=keys, how="outer", suffixes=("", "__ref"), indicator=True)
    diff = TableDiff(name, only_new=int((merged["_merge"] == "left_only").sum()),
                     only_reference=int((merged["_merge"] == "right_only").sum()))
    both = merged[merged["_merge"] == "both"]
    shared = [c for c in new.columns if c in reference.columns and c not in keys and c not in NOT_COMPARED]
    for col in shared:
        a, b = both[col], both[f"{col}__ref"]
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(a):
            a, b = a.to_numpy(float), b.to_numpy(float)
            same_nan = np.isnan(a) & np.isnan(b)
            delta = np.where(same_nan, 0.0, np.abs(a - b))  # NaN on one side only: inf below
            delta = np.where(np.isnan(delta), np.inf, delta)
            diff.numeric[col] = (float(delta.max()) if len(delta) else 0.0, int((delta > tolerance).sum()))
        else:
            differs = ~((a.astype(str) == b.astype(str)) | (a.isna() & b.isna()))
            diff.other[col] = int(differs.sum())
    for col in sorted(set(new.columns) ^ set(reference.columns)):
        diff.other[f"{col} (column on one side only)"] = len(both) or 1
    return diff


def _reference_csv(name: str, reference: str) -> pd.DataFrame | None:
    folder = Path(reference)
    if folder.is_dir():
        path = folder / f"{name}.csv"
        return tables.get_spec(name).upgrade(pd.read_csv(path)) if path.exists() else None
    root = paths.repo_root()
    try:
        text = subprocess.run(["git", "show", f"{reference}:tables/{name}.csv"], cwd=root, check=True,
                              capture_output=True, text=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError) as err:
        stderr = getattr(err, "stderr", "") or str(err)
        if "does not exist" in stderr or "exists on disk, but not in" in stderr:
            return None
        raise ValueError(f"reference {reference!r}: neither a folder nor a git revision with tables/ "
                         f"({stderr.strip().splitlines()[-1] if stderr.strip() else err})") from err
    spec = tables.get_spec(name)
    return spec.upgrade(pd.read_csv(io.StringIO(text)))


def compare_tables(reference: str = "HEAD", tables_dir: Path | None = None, tolerance: float = 0.0) -> list[TableDiff]:
    """Compare every known table in `tables_dir` (default: this checkout's tables/)
    with `reference`: a folder of CSVs or a git revision of this repository."""
    if tolerance < 0:
        raise ValueError(f"tolerance={tolerance}: must be >= 0")
    tables_dir = Path(tables_dir) if tables_dir else paths.repo_root() / "tables"
    out = []
    for name in tables.SPECS:
        path = tables_dir / f"{name}.csv"
        ref = _reference_csv(name, reference)
        if not path.exists() or ref is None:
            if path.exists() or ref is not None:
                out.append(TableDiff(name, missing="this run" if not path.exists() else "the reference"))
            continue
        try:
            out.append(compare_table(name, tables.get_spec(name).upgrade(pd.read_csv(path)), ref, tolerance))
        except ValueError as err:  # e.g. a reference from before a key column existed
            out.append(TableDiff(name, incomparable=str(err)))
    return out


# --------------------------------------------------------------------------- by conclusion (issue 14)

# A method ranking reproduces when Kendall's tau between the two runs' rankings is positive
# and significant at this level (ours): a ranking that is merely not reversed does not count.
RANKING_ALPHA = 0.05
RANKING_METRICS = ("mean_ap", "mean_auprc", "mean_roc_auc", "mean_prec99")
VERDICT_KEYS = ("background", "metric", "method", "baseline")


@dataclass
class Conclusions:
    """``compare_conclusions``'s result: three kinds of conclusion, each with ``reproduces``."""

    claims: pd.DataFrame  # claims.compare_claims(...).claims
    verdicts: pd.DataFrame  # *keys, verdict_new, verdict_reference, reproduces, compared
    rankings: pd.DataFrame  # background, model, metric, n_methods, tau, p_value, reproduces

    @property
    def compared_verdicts(self) -> pd.DataFrame:
        """The verdicts both sides have a run for (`compare_verdicts`)."""
        v = self.verdicts
        return v[v["compared"]] if "compared" in v else v

    @property
    def set_aside(self) -> int:
        """Verdicts of runs only one side has."""
        return len(self.verdicts) - len(self.compared_verdicts)

    @property
    def ok(self) -> bool:
        return bool(self.claims["reproduces"].all() and self.compared_verdicts["reproduces"].all()
                    and self.rankings["reproduces"].all())

    def differing(self) -> list[str]:
        out = []
        for r in self.claims[~self.claims["reproduces"]].itertuples():  # a: this run, b: the reference
            change = (f"{r.verdict_b} -> {r.verdict_a}" if r.verdict_a != r.verdict_b
                      else f"pooled holds {r.holds_pooled_b} -> {r.holds_pooled_a}")
            out.append(f"claim {r.claim_id} ({change})")
        v = self.compared_verdicts
        keys = [c for c in v.columns if c not in ("verdict_new", "verdict_reference", "reproduces", "compared")]
        for _, r in v[~v["reproduces"]].iterrows():
            where = " ".join(f"run {r[k]}" if k == "run" else str(r[k]) for k in keys)
            out.append(f"verdict {where} ({r['verdict_reference']} -> {r['verdict_new']})")
        for r in self.rankings[~self.rankings["reproduces"]].itertuples():
            out.append(f"ranking {r.background} {r.model} {r.metric} (tau {r.tau:.2f}, p {r.p_value:.2g})")
        return out

    def summary(self) -> str:
        """One line: how many conclusions reproduce, and which do not."""
        parts = [(len(t), int(t["reproduces"].sum())) for t in (self.claims, self.compared_verdicts, self.rankings)]
        total, same = sum(n for n, _ in parts), sum(k for _, k in parts)
        diff = self.differing()
        aside = (f"; {self.set_aside} verdicts of classifier runs only one side trained not compared"
                 if self.set_aside else "")
        return (f"{same} of {total} conclusions reproduce (claims {parts[0][1]}/{parts[0][0]}, method-vs-baseline "
                f"verdicts {parts[1][1]}/{parts[1][0]}, method rankings {parts[2][1]}/{parts[2][0]}{aside}); "
                f"differing: {'; '.join(diff) if diff else 'none'}")

    def lines(self) -> list[str]:
        out = ["claims (reference -> this run):"]
        for r in self.claims.itertuples():
            mark = "same" if r.reproduces else "DIFFERENT"
            out.append(f"  {mark:9} {r.claim_id}: {r.verdict_b} -> {r.verdict_a}")
        v = self.compared_verdicts
        n_diff = int((~v["reproduces"]).sum())
        out.append(f"method-vs-baseline verdicts (localization_mixed_models): {len(v) - n_diff} of "
                   f"{len(v)} the same" + (f" ({self.set_aside} of runs only one side trained: not compared)"
                                            if self.set_aside else ""))
        out.append("method rankings (trained classifier; Kendall's tau between the two runs' method means):")
        for r in self.rankings.itertuples():
            mark = "same" if r.reproduces else "DIFFERENT"
            out.append(f"  {mark:9} {r.background} {r.metric}: tau {r.tau:.2f} (p {r.p_value:.2g}, "
                       f"{r.n_methods} methods)")
        out.append(self.summary())
        return out


def read_tables(source: str | Path, names, required=()) -> dict[str, pd.DataFrame]:
    """Tables `names` that exist in a folder of CSVs or a git revision of this repository;
    a missing one of `required` is an error."""
    out = {}
    for name in names:
        df = _reference_csv(name, str(source))
        if df is None:
            if name in required:
                raise ValueError(f"{source}: no table {name}.csv (conclusions need at least {list(required)})")
            continue
        out[name] = df
    return out


def _pooled_summary(summary: pd.DataFrame, metrics) -> pd.DataFrame:
    """Image-weighted means over runs, per (background, model, method) (ours)."""
    from salbench.claims import POOLED, with_runs

    t = with_runs(summary)
    t = t[t["run"] != POOLED]
    w = t["n_images"].astype(float)
    sums = t[list(metrics)].astype(float).mul(w, axis=0).assign(_w=w).groupby(
        [t["background"], t["model"], t["method"]]).sum()
    return sums[list(metrics)].div(sums["_w"], axis=0).reset_index()


def compare_verdicts(new: pd.DataFrame, reference: pd.DataFrame, verdict_col: str = "verdict") -> pd.DataFrame:
    """Every method-vs-baseline verdict of two ``localization_mixed_models`` tables, joined on
    their keys (and ``run`` where both have it); a comparison on one side only differs, except
    that the verdicts of a classifier run only one side trained (e.g. run 2 of a 3-run
    profile against a 2-run reference) have nothing to be compared with: they are set aside
    (``compared`` False), not counted as differing."""
    keys = list(VERDICT_KEYS) + (["run"] if "run" in new.columns and "run" in reference.columns else [])
    for side, df in (("this run", new), ("the reference", reference)):
        missing = [c for c in [*keys, verdict_col] if c not in df.columns]
        if missing:
            raise ValueError(f"localization_mixed_models of {side} lacks columns {missing}")
    a = new[keys + [verdict_col]].astype({verdict_col: str})
    b = reference[keys + [verdict_col]].astype({verdict_col: str})
    if "run" in keys:
        a, b = a.astype({"run": str}), b.astype({"run": str})
    j = a.merge(b, on=keys, how="outer", suffixes=("_new", "_reference"), sort=True)
    j = j.rename(columns={f"{verdict_col}_new": "verdict_new", f"{verdict_col}_reference": "verdict_reference"})
    j[["verdict_new", "verdict_reference"]] = j[["verdict_new", "verdict_reference"]].fillna("missing")
    j["reproduces"] = (j["verdict_new"] == j["verdict_reference"]) & (j["verdict_new"] != "missing")
    j["compared"] = True
    if "run" in keys:
        j["compared"] = j["run"].isin(set(a["run"]) & set(b["run"]))
    return j


def compare_conclusions(reference: str = "HEAD", tables_dir: Path | None = None) -> Conclusions:
    """Compare this run's conclusions with the reference's (a folder of CSVs or a git revision):

    * every claim of the ledger (``claims.all_claims()``), built from each side's tables,
      by ``claims.compare_claims`` (its verdict over runs and its pooled verdict);
    * every method-vs-baseline verdict of ``localization_mixed_models``;
    * the method ranking of the trained classifier per background and metric
      (``claims.method_rankings`` on the runs' pooled means): reproduces when Kendall's tau
      is > 0 with p < ``RANKING_ALPHA`` (ours).

    Numbers may differ by any amount; only these conclusions count.
    """
    from salbench import claims

    required = ("localization_summary", "localization_mixed_models")
    names = tuple(dict.fromkeys([*claims.claim_tables(), *required]))
    folder = Path(tables_dir) if tables_dir else paths.repo_root() / "tables"
    if not folder.is_dir():
        raise ValueError(f"tables folder {str(folder)!r} does not exist; give a folder of this run's tables/*.csv")
    new = read_tables(folder, names, required)
    ref = read_tables(reference, names, required)
    # A side made before some analysis existed lacks its tables: its claims count as "missing".
    claim_cmp = claims.compare_claims(claims.build_ledger(new, skip_missing=True),
                                      claims.build_ledger(ref, skip_missing=True))
    verdicts = compare_verdicts(new["localization_mixed_models"], ref["localization_mixed_models"])
    metrics = [m for m in RANKING_METRICS if m in new["localization_summary"] and m in ref["localization_summary"]]
    sa, sb = (_pooled_summary(t["localization_summary"], metrics) for t in (new, ref))
    rankings = claims.method_rankings(sa[sa["model"] == "trained"], sb[sb["model"] == "trained"], metrics)
    rankings["reproduces"] = (rankings["tau"] > 0) & (rankings["p_value"] < RANKING_ALPHA)
    return Conclusions(claim_cmp.claims, verdicts, rankings)
