"""Number generators used by README.md's statements of results (registered in
``report.NUMBERS`` on import)."""

from __future__ import annotations

import numpy as np

from salbench.report import ReportError, Tables, number
from salbench.report_queries import _filter, _load, _values


@number
def scaled_range(t: Tables, table, column, scale="1", by="", stat="mean", digits="3", **filters) -> str:
    """`table_range` with the values multiplied by ``scale`` and printed with thousands
    separators (so compare it in a condition only below 1,000)."""
    v = _values(_filter(_load(t, table), filters, table), column, by, stat)
    if v.empty or not np.isfinite(v).all():
        raise ReportError(f"{table}.{column}: no finite value for {filters}")
    v = v * float(scale)
    lo, hi = (f"{x:,.{int(digits)}f}" for x in (v.min(), v.max()))
    return lo if lo == hi else f"{lo}-{hi}"


def _screen(t: Tables, variant: str, background: str) -> tuple[np.ndarray, int]:
    """One screen variant's steps to 95 % on one background (NaN = never) and its cap."""
    s = t.read("plateau_screen")
    s = s[(s["variant"] == variant) & (s["background"] == background)]
    if s.empty:
        raise ReportError(f"plateau_screen: no rows for {variant!r} on {background!r}")
    return s["steps_to_95"].to_numpy(dtype=float), int(s["cap"].max())


def _median_steps(steps: np.ndarray) -> float:
    """Median with never (NaN) counted as infinite."""
    return float(np.median(np.where(np.isnan(steps), np.inf, steps)))


@number
def screen_steps(t: Tables, variant: str, background: str) -> str:
    """Median steps to 95 % (min-max) over the seeds of one `plateau_screen` variant, a seed
    that never reached it counted as infinite: '1,325 (800-2,600)', '1,425 (700 to never
    within 3,000)', or, when the median is never, 'k of n (a, b), m never'."""
    steps, cap = _screen(t, variant, background)
    reached = np.sort(steps[~np.isnan(steps)])
    med = _median_steps(steps)
    if len(reached) == len(steps):
        return f"{med:,.0f} ({reached.min():,.0f}-{reached.max():,.0f})"
    if np.isfinite(med) and med < cap:
        return f"{med:,.0f} ({reached.min():,.0f} to never within {cap:,})"
    shown = ", ".join(f"{x:,.0f}" for x in reached)
    return f"{len(reached)} of {len(steps)} ({shown}), {len(steps) - len(reached)} never"


@number
def screen_seeds(t: Tables, variant: str) -> str:
    """Seeds of one `plateau_screen` variant per background (an error if they differ)."""
    s = t.read("plateau_screen")
    n = s[s["variant"] == variant].groupby("background")["seed"].nunique()
    if n.empty or n.nunique() != 1:
        raise ReportError(f"plateau_screen: {variant!r} has seeds per background {n.to_dict()}")
    return str(int(n.iloc[0]))


@number
def screen_images(t: Tables, variant: str, commas: str = "yes") -> str:
    """Training images seen by the median seed at 95 % (median steps x batch) of one
    `plateau_screen` variant, 'lo-hi' over the backgrounds; an error if a median is never.
    ``commas=no`` drops the thousands separators (for a condition)."""
    s = t.read("plateau_screen")
    batch = s.loc[s["variant"] == variant, "batch"].unique()
    if len(batch) != 1:
        raise ReportError(f"plateau_screen: {variant!r} has batch sizes {list(batch)}")
    images = []
    for bg in sorted(s.loc[s["variant"] == variant, "background"].unique()):
        med = _median_steps(_screen(t, variant, bg)[0])
        if not np.isfinite(med):
            raise ReportError(f"plateau_screen: {variant!r} on {bg}: the median seed never reached 95 %")
        images.append(med * int(batch[0]))
    fmt = ",.0f" if commas == "yes" else ".0f"
    lo, hi = format(min(images), fmt), format(max(images), fmt)
    return lo if lo == hi else f"{lo}-{hi}"
