"""A notebook's computed results (per-image scores, statistics tables) through the
``results`` cache stage, so that a rerun in which nothing changed recomputes nothing
(issue 12: a second `make reproduce` in at most 3 minutes).

An entry is keyed by the whole profile, the cache key and weights of every trained
model, the content of any input tables, the installed versions of the packages that
compute (`provenance.PACKAGES`), and the source of salbench's analysis code: every module
except those that only draw, format or report (`PRESENTATION_MODULES`). Changing a
plotting function therefore rebuilds nothing, and changing any analysis code rebuilds
every result, since a result may depend on any of it. Maps and models keep their own,
finer caches, so such a rebuild costs the statistics, not the saliency maps.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, TypeVar

import pandas as pd

from salbench import cache, config, provenance
from salbench.config import Profile

STAGE = "results"
RESULTS_FILE = "results.pkl"
# Modules that only draw, format, compare or report results; editing them never changes one.
PRESENTATION_MODULES = frozenset({
    "plots.py", "report.py", "report_sections.py", "claims.py", "claims_budding_arun.py",
    "claims_tomsett_arun.py", "compare.py", "cli.py", "runner.py", "outputs.py", "tables.py", "__main__.py",
})
T = TypeVar("T")


def analysis_files() -> list[Path]:
    """Every salbench .py file except the top-level `PRESENTATION_MODULES`, sorted."""
    root = Path(__file__).resolve().parents[1]
    return [p for p in sorted(root.rglob("*.py")) if not (p.parent == root and p.name in PRESENTATION_MODULES)]


def analysis_code_sha() -> str:
    """SHA-256 of the analysis modules' paths (relative to the package) and bytes."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in analysis_files():
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def frame_digest(df: pd.DataFrame) -> str:
    """SHA-256 of a table's columns, dtypes, index and values."""
    digest = hashlib.sha256()
    digest.update(repr([(str(c), str(t)) for c, t in df.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
    return digest.hexdigest()


def _jsonable(value):
    if isinstance(value, pd.DataFrame):
        return {"frame_sha256": frame_digest(value)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def cached(name: str, profile: Profile, models, build: Callable[[], T], *inputs) -> T:
    """`build()`'s result (a pickleable value, e.g. a DataFrame or a dict of them),
    computed once per (name, profile, trained models, `inputs`, analysis code).
    `models`: a `pipeline.models.ModelSet` or None; `inputs`: JSON-able values and
    DataFrames (keyed by content) that `build` depends on beyond the profile and models."""
    # A model's weights, not only its config: a retrained entry under the same key is another model.
    models_ = sorted(f"{m.key}-{m.meta['weights_sha256']}" for m in models.trained_models) if models else []
    key = config.config_hash("results", name, config.as_dict(profile), models_, analysis_code_sha(),
                             provenance.package_versions(), [_jsonable(x) for x in inputs])

    def write(tmp: Path) -> dict:
        pd.to_pickle(build(), tmp / RESULTS_FILE)
        return {}

    path = cache.cached(STAGE, key, write, meta={"name": name, "profile": profile.name})
    return pd.read_pickle(path / RESULTS_FILE)
