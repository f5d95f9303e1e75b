"""Compare a run's tables with a reference run (DESIGN: "end to end").

``python -m salbench compare`` reads every ``tables/*.csv`` of this checkout and the
same files of a reference (by default the committed ones, ``git show HEAD:tables/...``,
or a folder), joins rows on each table's key columns (``salbench.tables.SPECS``) and
reports, per table, rows present on one side only, the largest absolute difference of
every numeric column, and mismatches of the other columns (verdicts, flags).

Tolerance: 0 by default, because the same profile and seed give the same tables on
the same machine (bf16 training, thread scheduling and library versions may change
weights elsewhere; pass ``--tolerance`` for a cross-machine check). Columns that
measure the machine rather than the method (timings, warning texts) are not compared.
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
        return pd.read_csv(path) if path.exists() else None
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
    return pd.read_csv(io.StringIO(text))


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
            out.append(compare_table(name, pd.read_csv(path), ref, tolerance))
        except ValueError as err:  # e.g. a reference from before a key column existed
            out.append(TableDiff(name, incomparable=str(err)))
    return out
