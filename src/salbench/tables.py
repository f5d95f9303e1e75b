"""Every published table, declared once: its name, key columns and number format.

``outputs.save_table`` formats a table from its spec and refuses one whose key
columns are missing or do not identify its rows; ``compare`` joins two versions of a
table on the same keys; ``report`` reads the tables paper.md quotes. A new table is
one entry in ``SPECS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import pandas as pd


class UnknownTableError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


@dataclass(frozen=True)
class TableSpec:
    """One published table: ``tables/<name>.csv`` (and ``.md``), one row per key.

    Floats are written with ``float_digits`` decimals, or with ``float_digits``
    significant digits when ``significant`` is True (p values, which fixed decimals
    would print as 0.0000).

    ``added``: key columns that were added after the table was first published, with
    the value every row of an older table stands for (e.g. ``{"output": "probability"}``:
    fidelity scores were on the probability only before the logit margin). ``read_table``
    fills them in, so older runs' tables stay readable and comparable."""

    name: str
    keys: tuple[str, ...]
    float_digits: int = 4
    significant: bool = False
    added: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self):
        if not self.keys:
            raise ValueError(f"table {self.name!r}: needs at least one key column")
        if self.float_digits < 1:
            raise ValueError(f"table {self.name!r}: float_digits={self.float_digits} must be >= 1")

    @property
    def float_format(self) -> str:
        """The format spec of its floats, e.g. ``.4f`` or ``.4g``."""
        return f".{self.float_digits}{'g' if self.significant else 'f'}"

    def upgrade(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` with every ``added`` key column it lacks, at its older value."""
        missing = {k: v for k, v in self.added.items() if k not in df.columns}
        return df.assign(**missing) if missing else df

    def check(self, df: pd.DataFrame, where: str = "") -> None:
        """Raise ValueError if a key column is missing or two rows share a key."""
        at = f" in {where}" if where else ""
        absent = [k for k in self.keys if k not in df.columns]
        if absent:
            raise ValueError(f"table {self.name!r}{at}: key column(s) {absent} missing; columns: {list(df.columns)}")
        dup = df.duplicated(list(self.keys), keep=False)
        if dup.any():
            first = df.loc[dup, list(self.keys)].iloc[0].to_dict()
            raise ValueError(f"table {self.name!r}{at}: duplicate rows for key {list(self.keys)} "
                             f"({int(dup.sum())} rows), e.g. {first}")


# Fidelity tables written before the logit margin was scored hold the probability only,
# and their scores carry 6 decimals (float_digits=6 then): differences below this are not
# in them, the finest resolution a reader of such a table can check.
PROBABILITY_ONLY = {"output": "probability"}
LEGACY_FIDELITY_PRECISION = 1e-6

SPECS: dict[str, TableSpec] = {s.name: s for s in (
    TableSpec("accuracy", ("background", "architecture", "role", "run")),
    TableSpec("localization_scores", ("background", "run", "model", "method", "image"), float_digits=6),
    TableSpec("localization_summary", ("background", "run", "model", "method")),
    TableSpec("localization_mixed_models", ("background", "run", "metric", "method", "baseline"), significant=True),
    TableSpec("localization_tukey", ("background", "run", "metric", "group1", "group2"), significant=True),
    TableSpec("localization_randomization", ("background", "run", "model", "method", "metric")),
    TableSpec("localization_run_variance", ("background", "component"), significant=True),
    TableSpec("plateau_study", ("variant", "background", "seed_index", "cap")),
    TableSpec("plateau_screen", ("variant", "background", "seed")),
    TableSpec("plateau_diagnosis", ("background", "input")),
    # Fidelity scores carry 9 significant digits: ties at the resolution (about 1e-7 of
    # the probability) must stay visible in the published table.
    TableSpec("fidelity_scores", ("background", "model", "method", "image", "style", "output", "unit"),
              float_digits=9, significant=True, added=PROBABILITY_ONLY),
    TableSpec("fidelity_random_baseline", ("background", "unit", "style", "output", "L"), float_digits=6,
              added=PROBABILITY_ONLY),
    TableSpec("fidelity_resolution", ("background", "output"), float_digits=3, significant=True),
    TableSpec("tomsett_alpha", ("background", "unit", "output", "methods", "with_edge", "style", "column"),
              added=PROBABILITY_ONLY),
    TableSpec("tomsett_consistency", ("background", "unit", "output", "method", "metric_a", "style_a", "metric_b",
                                      "style_b"), added=PROBABILITY_ONLY),
    TableSpec("tomsett_intermethod", ("background", "unit", "output", "method_set", "style", "column"),
              added=PROBABILITY_ONLY),
    TableSpec("claims", ("claim_id",)),
    TableSpec("fidelity_validity", ("background", "unit", "style", "output", "column", "question", "method"),
              added=PROBABILITY_ONLY),
    TableSpec("randomization_cascade", ("background", "method", "image", "order", "step"), float_digits=6),
    TableSpec("randomization_baseline", ("background", "method", "setting", "image"), float_digits=6),
    TableSpec("randomization_verdicts", ("background", "method"), significant=True),
    TableSpec("consistency_scores", ("background", "kind", "method", "image", "pair"), float_digits=6),
    TableSpec("consistency_verdicts", ("background", "kind", "method", "baseline"), significant=True),
    TableSpec("consistency_tukey", ("background", "kind", "group1", "group2"), significant=True),
    TableSpec("repeatability_vs_reproducibility", ("background", "method"), significant=True),
)}


def read_table(path: Path | str, name: str | None = None) -> pd.DataFrame:
    """A published table from CSV, with the ``added`` key columns an older table lacks
    filled in and its keys checked (``name``: default, the file's stem)."""
    path = Path(path)
    spec = get_spec(name or path.stem)
    df = spec.upgrade(pd.read_csv(path))
    spec.check(df, str(path))
    return df


def get_spec(name: str) -> TableSpec:
    """The spec of table ``name``; an unknown name lists the valid ones."""
    if name not in SPECS:
        raise UnknownTableError(f"unknown table {name!r}; valid tables: {sorted(SPECS)}")
    return SPECS[name]


def images_in_every_run(scores: pd.DataFrame) -> pd.DataFrame:
    """Rows of the images that every classifier run of their background was scored on
    (runs other than the selected one may be scored on fewer: `localization.n_images_other_runs`),
    so that comparisons across runs are over the same images."""
    runs = scores.groupby("background")["run"].transform("nunique")
    per_image = scores.groupby(["background", "image"])["run"].transform("nunique")
    return scores[per_image == runs]
