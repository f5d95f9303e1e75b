"""Perturbation fidelity metrics of Tomsett et al. 2020: AOPC (MoRF / LeRF) and faithfulness F.

The model enters only as ``predict(x_batch) -> probabilities``: ``x_batch`` is
float32 of shape (B, H, W, C), the result (B, n_classes) softmax probabilities.

Definitions (Tomsett et al. 2020, "Sanity Checks for Saliency Metrics"; PROTOCOLS A2):

``f`` (``outputs``; one score table row per output)
    ``"probability"`` (Tomsett): ``f(x') = p_c(x')``, the softmax probability of the
    class ``c = argmax p(x)`` predicted on the *unperturbed* image, held fixed
    through every step (Samek's reading of "the probability assigned to the
    highest-probability class"; the paper names no class, ours).
    ``"logit_margin"`` (ours, beyond the paper): ``f(x') = z_c(x') - max_{j != c}
    z_j(x')``, from the logits ``z``. A two-class classifier that is sure of every
    image (p of at least 0.99999) moves its probability only once the evidence is
    gone, so probability drops are all or nothing; the margin moves with the
    evidence throughout. When ``predict`` returns logits, the probability is their
    softmax in float64, so that float32 rounding next to 1 adds no ties of its own.
AOPC (Samek et al. 2017, as Tomsett wrote it)
    Per image, the drop curve ``d_k = f(x) - f(x^(k))`` for ``k = 0..l_max``
    (``d_0 = 0``), where ``x^(k)`` has the first ``k`` units of the ordering
    perturbed (cumulative). ``AOPC(L) = 1/(L+1) * sum_{k=0..L} d_k``; the k = 0
    term is zero, so this equals Tomsett's ``1/(L+1) sum_{k=1..L}``. MoRF orders
    units by *signed* relevance, most positive first; LeRF most negative first
    (Tomsett's Discussion: LeRF removes "the most negative pixels first"). Higher
    MoRF and lower LeRF are "better".
Faithfulness F (Alvarez-Melis & Jaakkola 2018, as Tomsett used it)
    Per image, Pearson's r (``scipy.stats.pearsonr``) between the relevance ``R_u``
    of ``n_faithfulness`` (100) units drawn at random once and shared by every
    image, and the drop ``Delta_u = f(x) - f(x_u)`` when unit ``u`` alone is
    perturbed. ``Delta`` does not depend on the method (the perturbation values are
    fixed per image and unit), so it is computed once per image and style. If
    ``R`` or ``Delta`` is constant over the units, r is undefined: ``faithfulness``
    is NaN and ``faithfulness_status`` says why ("constant_relevance" or
    "constant_drop"); ``faithfulness_summary`` excludes and counts those rows.

Perturbation unit (``unit``, ours): a square patch of ``unit x unit`` pixels on a
row-major grid anchored at the top-left corner; ``unit=1`` is Tomsett's single
pixel. When the image side is not a multiple of ``unit``, the last row / column of
patches is *partial* (smaller) and still a unit of its own (ours). The relevance
of a unit is the sum of the map over its pixels (a partial patch sums fewer
pixels). Perturbing a unit sets all its pixels and channels.

Perturbation styles (Tomsett: "replacing the selected pixel with the dataset mean,
and ... with uniformly distributed random RGB values"):

``"mean"``
    Every perturbed value becomes ``mean_value``, a scalar the caller passes (the
    training-set mean intensity in the model's input space).
``"uniform"``
    One value per (image, unit, channel), uniform on ``value_range`` (the data
    range), drawn from a Generator seeded by the design's ``uniform_seed`` and the
    image's integer id (``default_rng([uniform_seed, image_id])``; ours). The same
    values serve every method, both orderings, the random orderings and F, so
    methods differ only by their ordering (PROTOCOLS A3 CHOICE), and they do not
    depend on batching or on which other images are scored.

Ties (ours; PROTOCOLS A2.1 leaves them open): orderings are stable sorts over a
fixed *tie priority* of the units. With ``tie_break="random"`` (default) the
priority is one permutation drawn once by ``make_design`` and shared by every
image, method and direction; with ``"index"`` it is the row-major unit index.
Among units of equal relevance, the one earlier in the priority comes first, in
MoRF and in LeRF alike (so a constant map gives the same MoRF and LeRF curve).

Random-ordering baseline (Tomsett's Methods): ``n_random`` (100) orderings drawn
once and shared by every image; they have no direction, so one AOPC per ordering
serves as the baseline of MoRF and of LeRF.

Resolution (ours): the same input need not give the same output bit for bit when
the batch it travels in changes (size, position, neighbours). ``output_resolution``
measures the largest such difference of ``f`` per output; differences of scores
below it are ties wherever a ranking or a correlation is computed
(``salbench.metrics.reliability``). ``score_fidelity(resolution=...)`` marks F as
undefined (``"drop_below_resolution"``) on an image whose single-unit drops all lie
within the resolution of each other: their correlation with the relevance would be
one of noise.

Engine: ``score_fidelity`` walks a lazy generator of jobs (image, style,
ordering or F, step range), writes each job's perturbed inputs straight into one
preallocated float32 batch buffer of ``batch_size`` images, calls ``predict`` when
the buffer is full (batches run across images, methods, orderings and steps), and
reduces each image to its scores as soon as its last step returns. Memory is one
batch buffer plus the probabilities of the images still open, never the set of
perturbed images.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from salbench.batching import batch_slices
from salbench.errors import NonFiniteMapError
from salbench.registry import Registry

STYLES = ("mean", "uniform")
OUTPUTS = ("probability", "logit_margin")
# The output Tomsett et al. scored: the claims ledger tests their claims on it.
PAPER_OUTPUT = "probability"
DIRECTIONS = ("morf", "lerf")
TIE_BREAKS = ("random", "index")
DEFAULT_LS = (20, 40, 60, 80, 100)
FAITHFULNESS_STATUS = ("ok", "constant_relevance", "constant_drop", "drop_below_resolution", "not_computed")

# predict must return probabilities: every row sums to 1 within this (float32
# softmax rounding is ~1e-7 per class; 1e-3 still refuses logits and scores).
PROBABILITY_SUM_TOL = 1e-3

_AOPC_COLUMN = re.compile(r"^aopc_(morf|lerf)_L(\d+)$")


def _check_choice(name: str, value, valid: Sequence[str]) -> None:
    if value not in valid:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {list(valid)}")


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def aopc_columns(ls: Sequence[int] = DEFAULT_LS) -> list[str]:
    """Column names ``aopc_morf_L<L>...`` then ``aopc_lerf_L<L>...`` for the given L."""
    return [f"aopc_{d}_L{L}" for d in DIRECTIONS for L in ls]


def parse_metric(column: str) -> tuple[str, int | None]:
    """``"aopc_morf_L20"`` -> ``("aopc_morf", 20)``; ``"faithfulness"`` -> ``("faithfulness", None)``."""
    m = _AOPC_COLUMN.match(column)
    if m:
        return f"aopc_{m.group(1)}", int(m.group(2))
    if column == "faithfulness":
        return "faithfulness", None
    raise ValueError(f"{column!r} is not a fidelity metric column; expected 'faithfulness' or 'aopc_morf_L<L>' / 'aopc_lerf_L<L>'")


# --------------------------------------------------------------------------- units


@dataclass(frozen=True)
class UnitGrid:
    """Square perturbation units of side ``unit`` on an ``height x width`` image.

    Units are numbered row-major over the patch grid; edge patches that do not fit
    whole are partial (ours). ``unit_map[y, x]`` is the unit of pixel (y, x).
    """

    height: int
    width: int
    unit: int

    @property
    def n_rows(self) -> int:
        return -(-self.height // self.unit)

    @property
    def n_cols(self) -> int:
        return -(-self.width // self.unit)

    @property
    def n_units(self) -> int:
        return self.n_rows * self.n_cols

    @property
    def unit_map(self) -> np.ndarray:
        rows = np.arange(self.height) // self.unit
        cols = np.arange(self.width) // self.unit
        return (rows[:, None] * self.n_cols + cols[None, :]).astype(np.intp)

    def relevance(self, a: np.ndarray) -> np.ndarray:
        """Unit relevance: the sum of the map over each unit's pixels, float64.

        ``a`` is one map (H, W) -> (n_units,) or a batch (N, H, W) -> (N, n_units).
        """
        a = np.asarray(a, dtype=np.float64)
        if a.shape[-2:] != (self.height, self.width):
            raise ValueError(f"map shape {a.shape} does not end in the grid's ({self.height}, {self.width})")
        flat = a.reshape(-1, self.height * self.width)
        idx = self.unit_map.ravel()
        out = np.zeros((flat.shape[0], self.n_units))
        for i, row in enumerate(flat):
            out[i] = np.bincount(idx, weights=row, minlength=self.n_units)
        return out[0] if a.ndim == 2 else out.reshape(a.shape[:-2] + (self.n_units,))


def unit_grid(height: int, width: int, unit: int) -> UnitGrid:
    """A ``UnitGrid``; ``unit`` must lie in 1..min(height, width)."""
    height, width = _positive_int("height", height), _positive_int("width", width)
    unit = _positive_int("unit", unit)
    if unit > min(height, width):
        raise ValueError(f"unit={unit} exceeds the image side min({height}, {width}); choose 1..{min(height, width)}")
    return UnitGrid(height, width, unit)


# --------------------------------------------------------------------------- design


@dataclass(frozen=True)
class PerturbationDesign:
    """Everything random that is shared by all images, drawn once by ``make_design``.

    ``tie_order``: unit priority among equal relevance, (n_units,).
    ``random_orderings``: the first ``l_max`` units of each random ordering, (n_random, l_max).
    ``faithfulness_units``: the units perturbed one at a time for F, (n_faithfulness,).
    ``uniform_seed``: seeds the per-image uniform values (see ``uniform_values``).
    """

    grid: UnitGrid
    l_max: int
    tie_break: str
    tie_order: np.ndarray
    random_orderings: np.ndarray
    faithfulness_units: np.ndarray
    uniform_seed: int

    @property
    def n_random(self) -> int:
        return len(self.random_orderings)

    @property
    def n_faithfulness(self) -> int:
        return len(self.faithfulness_units)


def make_design(
    height: int,
    width: int,
    *,
    unit: int,
    rng: np.random.Generator,
    l_max: int = 100,
    n_random: int = 100,
    n_faithfulness: int = 100,
    tie_break: str = "random",
) -> PerturbationDesign:
    """Draw the shared random parts of a fidelity run from ``rng`` (a seeded Generator).

    Four child streams (``rng.spawn(4)``) feed, in this order, the tie priority, the
    random orderings, the faithfulness units and the uniform seed, so changing
    ``n_random`` does not change the faithfulness units, and so on. ``n_random=0``
    skips the random baseline; ``n_faithfulness=0`` skips F (else it needs >= 3 units).
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a seeded np.random.Generator; got {type(rng).__name__}")
    _check_choice("tie_break", tie_break, TIE_BREAKS)
    grid = unit_grid(height, width, unit)
    l_max = _positive_int("l_max", l_max)
    if l_max > grid.n_units:
        raise ValueError(f"l_max={l_max} exceeds the {grid.n_units} units of a {height}x{width} image at unit={unit}")
    n_random = _positive_int("n_random", n_random, minimum=0)
    n_faithfulness = _positive_int("n_faithfulness", n_faithfulness, minimum=0)
    if n_faithfulness and not 3 <= n_faithfulness <= grid.n_units:
        raise ValueError(f"n_faithfulness={n_faithfulness} must be 0 (skip F) or lie in 3..{grid.n_units} (the units)")
    g_tie, g_rand, g_faith, g_unif = rng.spawn(4)
    tie_order = g_tie.permutation(grid.n_units) if tie_break == "random" else np.arange(grid.n_units)
    random_orderings = np.stack(
        [g_rand.choice(grid.n_units, size=l_max, replace=False) for _ in range(n_random)]
    ) if n_random else np.zeros((0, l_max), np.intp)
    faith = g_faith.choice(grid.n_units, size=n_faithfulness, replace=False) if n_faithfulness else np.zeros(0, np.intp)
    return PerturbationDesign(
        grid=grid, l_max=l_max, tie_break=tie_break, tie_order=tie_order.astype(np.intp),
        random_orderings=random_orderings.astype(np.intp), faithfulness_units=faith.astype(np.intp),
        uniform_seed=int(g_unif.integers(0, 2**63 - 1)),
    )


def uniform_values(design: PerturbationDesign, image_id: int, n_channels: int, value_range) -> np.ndarray:
    """The uniform perturbation values of one image: (n_units, n_channels) float64.

    ``default_rng([design.uniform_seed, image_id]).uniform(lo, hi, (n_units, C))``:
    the same on every call, whatever the batch or the other images (ours).
    """
    lo, hi = _check_range(value_range)
    if isinstance(image_id, bool) or int(image_id) != image_id or image_id < 0:
        raise ValueError(f"image ids must be non-negative integers for the uniform style; got {image_id!r}")
    gen = np.random.default_rng([design.uniform_seed, int(image_id)])
    return gen.uniform(lo, hi, size=(design.grid.n_units, n_channels))


def _check_range(value_range) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"value_range must be a pair (low, high); got {value_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"value_range must be finite with low < high; got {value_range!r}")
    return lo, hi


def unit_order(relevance: np.ndarray, direction: str, tie_order: np.ndarray) -> np.ndarray:
    """All units in perturbation order for one map's unit relevance (signed).

    ``"morf"``: descending relevance; ``"lerf"``: ascending (most negative first).
    Ties: a stable sort over ``tie_order``, so equal units keep their tie priority.
    """
    _check_choice("direction", direction, DIRECTIONS)
    r = np.asarray(relevance, dtype=np.float64)[tie_order]
    key = -r if direction == "morf" else r
    return tie_order[np.argsort(key, kind="stable")]


def aopc(drops: np.ndarray, ls: Sequence[int]) -> np.ndarray:
    """AOPC at each L from drop curves ``d_0..d_lmax`` (last axis): ``sum_{k<=L} d_k / (L+1)``."""
    cs = np.cumsum(np.asarray(drops, dtype=np.float64), axis=-1)
    ls = np.asarray(ls, dtype=np.intp)
    return cs[..., ls] / (ls + 1)


# --------------------------------------------------------------------------- engine


@dataclass
class FidelityResult:
    """Output of ``score_fidelity``.

    ``scores``: one row per (image, method, style, output) with columns image,
    method, style, output, unit, label_pred, p_pred, f_clean (f of the clean image),
    aopc_morf_L*, aopc_lerf_L*, faithfulness, faithfulness_status. ``random``: one
    row per (image, style, output, ordering) with image, style, output, unit,
    ordering, label_pred, p_pred, f_clean, aopc_L*. ``curves`` (only with
    ``return_curves=True``): drop curves d_0..d_lmax, ``"methods"`` of shape
    (N, n_outputs, n_methods, n_styles, 2 [morf, lerf], l_max + 1), ``"random"``
    (N, n_outputs, n_styles, n_random, l_max + 1), ``"faithfulness"`` (N, n_outputs,
    n_styles, n_faithfulness) the single-unit drops; axes follow ``outputs``,
    ``methods`` and ``styles``. ``n_forward``: images
    sent through ``predict`` (clean pass included).
    """

    scores: pd.DataFrame
    random: pd.DataFrame
    methods: list[str]
    styles: list[str]
    n_forward: int
    curves: dict[str, np.ndarray] | None = field(default=None)
    outputs: list[str] = field(default_factory=lambda: ["probability"])


@dataclass
class _Open:
    """Probabilities of one image's perturbed inputs, filled as batches return."""

    p_ord: np.ndarray  # (n_outputs, n_styles, n_slots, l_max): slots = methods x (morf, lerf), then random
    p_faith: np.ndarray  # (n_outputs, n_styles, n_faithfulness)
    r_faith: np.ndarray  # (n_methods, n_faithfulness) relevance of the F units
    remaining: int


@dataclass
class _Job:
    image: int  # position in the batch
    style: int
    slot: int  # ordering slot, or -1 for the faithfulness units
    n_steps: int
    fill: Callable[[np.ndarray, int, int], None]  # writes steps [start, stop) into out


def _check_probs(p: np.ndarray, n: int) -> np.ndarray:
    p = np.asarray(p)
    if p.ndim != 2 or p.shape[0] != n:
        raise ValueError(f"predict must return (B, n_classes) for B={n} inputs; got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("predict returned NaN or Inf")
    return p


def softmax64(logits: np.ndarray) -> np.ndarray:
    """Softmax of float32 logits, computed in float64."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _model_outputs(raw, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(probabilities, logits or None) from what ``predict`` returned: an array of
    probabilities, or a mapping with ``"logits"`` (and optionally ``"probabilities"``)."""
    if isinstance(raw, Mapping):
        unknown = sorted(set(raw) - {"logits", "probabilities"})
        if unknown or "logits" not in raw:
            raise ValueError(f"predict returned a mapping with keys {sorted(raw)}; expected 'logits' "
                             "(and optionally 'probabilities')")
        logits = _check_probs(raw["logits"], n)
        probs = _check_probs(raw["probabilities"], n) if "probabilities" in raw else softmax64(logits)
        return probs, logits
    return _check_probs(raw, n), None


def output_values(probs: np.ndarray, logits: np.ndarray | None, label: np.ndarray, output: str) -> np.ndarray:
    """``f`` of each row for the class ``label`` of its image: ``p_c`` or ``z_c - max_{j != c} z_j``."""
    rows = np.arange(len(label))
    if output == "probability":
        return np.asarray(probs, dtype=np.float64)[rows, label]
    if output == "logit_margin":
        if logits is None:
            raise ValueError("the 'logit_margin' output needs predict to return {'logits': ...}; it returned "
                             "probabilities only")
        z = np.asarray(logits, dtype=np.float64)
        others = z.copy()
        others[rows, label] = -np.inf
        return z[rows, label] - others.max(axis=1)
    raise ValueError(f"output={output!r} is not valid; choose one of {list(OUTPUTS)}")


def _predict_batched(predict, x: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
    got = [_model_outputs(predict(x[s]), s.stop - s.start) for s in batch_slices(len(x), batch_size)]
    probs = np.concatenate([g[0] for g in got])
    logits = None if got[0][1] is None else np.concatenate([g[1] for g in got])
    return probs, logits


def output_resolution(
    predict: Callable[[np.ndarray], object],
    x_batch,
    *,
    outputs: Sequence[str] = OUTPUTS,
    batch_sizes: Sequence[int] = (1, 7, 64),
    rng: np.random.Generator,
    n_orders: int = 2,
) -> pd.DataFrame:
    """The resolution of each output ``f``: the largest difference of ``f`` for the same
    input over batch sizes, batch compositions and repeated calls (ours).

    Every input of ``x_batch`` (B, H, W, C) goes through ``predict`` in batches of each
    of ``batch_sizes`` (capped at B), in row order, in reverse order and in
    ``n_orders`` random orders from ``rng`` (so it meets other neighbours at other
    positions), and the first of these calls is repeated. The class ``c`` is the
    argmax of the first call. Returns one row per output: ``output``,
    ``resolution`` (max over inputs of max - min over calls), ``n_inputs``,
    ``n_calls``, ``batch_sizes``.
    """
    x = np.asarray(x_batch, dtype=np.float32)
    if x.ndim != 4 or len(x) < 2:
        raise ValueError(f"x_batch must be (B >= 2, H, W, C); got shape {x.shape}")
    for o in outputs:
        _check_choice("output", o, OUTPUTS)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a seeded np.random.Generator; got {type(rng).__name__}")
    n = len(x)
    sizes = sorted({min(_positive_int("batch size", b), n) for b in batch_sizes})
    orders = [np.arange(n), np.arange(n)[::-1], *(rng.permutation(n) for _ in range(int(n_orders)))]
    runs, label = [], None
    for size in sizes:
        for order in orders:
            probs, logits = _predict_batched(predict, x[order], size)
            back = np.empty_like(order)
            back[order] = np.arange(n)
            probs, logits = probs[back], None if logits is None else logits[back]
            if label is None:
                label = probs.argmax(axis=1)
                first = (order, size)
            runs.append(np.stack([output_values(probs, logits, label, o) for o in outputs], axis=1))
    order, size = first
    probs, logits = _predict_batched(predict, x[order], size)  # the first call again
    runs.append(np.stack([output_values(probs, logits, label, o) for o in outputs], axis=1))
    stacked = np.stack(runs)  # (calls, inputs, outputs)
    spread = (stacked.max(axis=0) - stacked.min(axis=0)).max(axis=0)
    return pd.DataFrame({"output": list(outputs), "resolution": spread.astype(float), "n_inputs": n,
                         "n_calls": len(runs), "batch_sizes": " ".join(map(str, sizes))})


def score_fidelity(
    predict: Callable[[np.ndarray], np.ndarray],
    x_batch,
    a_batch: Mapping[str, np.ndarray],
    design: PerturbationDesign,
    *,
    styles: Sequence[str] = STYLES,
    mean_value: float | None = None,
    value_range: tuple[float, float] | None = None,
    ls: Sequence[int] = DEFAULT_LS,
    batch_size: int = 256,
    image_ids: Sequence[int] | None = None,
    return_curves: bool = False,
    outputs: Sequence[str] = ("probability",),
    resolution: Mapping[str, float] | None = None,
) -> FidelityResult:
    """AOPC (MoRF, LeRF), F and the random-ordering AOPC of every image, method and style.

    Parameters
    ----------
    predict : callable, float32 (B, H, W, C) -> probabilities (B, n_classes), or
        a mapping ``{"logits": (B, n_classes)}`` (optionally with ``"probabilities"``)
        Called with at most ``batch_size`` inputs at a time (every batch full but
        the last of each pass). Probability rows must sum to 1
        (``PROBABILITY_SUM_TOL``). The input is a view of a reused buffer: predict
        must not keep it.
    x_batch : (N, H, W, C) float
        Images in the model's input space; cast to float32.
    a_batch : {method: (N, H, W) float}
        Signed saliency maps, one value per pixel (channels already reduced).
    design : PerturbationDesign
        Units, tie priority, random orderings, F units, uniform seed (``make_design``).
    styles : subset of ("mean", "uniform")
    mean_value : float
        The value of the "mean" style (training-set mean intensity, input space).
    value_range : (low, high)
        The range of the "uniform" style (the data range, input space).
    ls : AOPC lengths, each in 0..design.l_max.
    image_ids : N distinct non-negative ints, default 0..N-1
        The ``image`` column and the seed key of each image's uniform values: pass
        global ids when scoring a data set in chunks so the values do not change.
    return_curves : keep every drop curve (memory N x outputs x slots x styles x (l_max+1)).
    outputs : subset of ("probability", "logit_margin"), the ``f`` scored (see the
        module docstring); the logit margin needs logits from ``predict``. Every
        output is read off the same forward passes.
    resolution : {output: float}, optional
        The output's resolution (``output_resolution``): F is undefined
        (``"drop_below_resolution"``) on an image whose single-unit drops span no
        more than it.

    Cost: N clean passes plus, per image and style, ``(2 n_methods + n_random) l_max
    + n_faithfulness`` forward passes, in batches of ``batch_size``.
    """
    styles = list(styles)
    if not styles:
        raise ValueError(f"styles is empty; choose from {list(STYLES)}")
    for s in styles:
        _check_choice("style", s, STYLES)
    if len(set(styles)) != len(styles):
        raise ValueError(f"styles lists a style twice: {styles}")
    if "mean" in styles:
        if mean_value is None or not np.isfinite(float(mean_value)):
            raise ValueError(f"the 'mean' style needs a finite mean_value (the training-set mean); got {mean_value!r}")
    if "uniform" in styles:
        if value_range is None:
            raise ValueError("the 'uniform' style needs value_range=(low, high), the data range")
        _check_range(value_range)
    outputs = list(outputs)
    if not outputs or len(set(outputs)) != len(outputs):
        raise ValueError(f"outputs must list distinct outputs from {list(OUTPUTS)}; got {outputs}")
    for o in outputs:
        _check_choice("output", o, OUTPUTS)
    resolution = dict(resolution or {})
    bad_res = {o: r for o, r in resolution.items() if o not in OUTPUTS or not (np.isfinite(r) and r >= 0)}
    if bad_res:
        raise ValueError(f"resolution must map outputs {list(OUTPUTS)} to finite values >= 0; got {bad_res}")
    batch_size = _positive_int("batch_size", batch_size)
    ls = [int(v) for v in ls]
    bad_ls = [v for v in ls if not 0 <= v <= design.l_max]
    if not ls or bad_ls:
        raise ValueError(f"ls must be a non-empty list of lengths in 0..{design.l_max} (design.l_max); got {ls}")

    x = np.asarray(x_batch)
    grid = design.grid
    if x.ndim != 4 or x.shape[1:3] != (grid.height, grid.width):
        raise ValueError(f"x_batch must have shape (N, {grid.height}, {grid.width}, C) to match the design; got {x.shape}")
    x = x.astype(np.float32, copy=False)
    n, c_dim = len(x), x.shape[3]
    methods = list(a_batch)
    maps = {}
    for m in methods:
        a = np.asarray(a_batch[m])
        if a.shape != x.shape[:3]:
            raise ValueError(f"map of method {m!r} has shape {a.shape}; expected (N, H, W) = {x.shape[:3]}")
        bad = ~np.isfinite(a).reshape(n, -1).all(axis=1)
        if bad.any():
            raise NonFiniteMapError(f"method {m!r}: the maps of images {np.flatnonzero(bad)[:10].tolist()} hold NaN or Inf")
        maps[m] = a
    ids = np.arange(n) if image_ids is None else np.asarray(list(image_ids))
    if len(ids) != n or len(set(ids.tolist())) != n:
        raise ValueError(f"image_ids must hold {n} distinct values; got {len(ids)} ({len(set(ids.tolist()))} distinct)")

    # Clean pass: the class c and f(x) of every image, per output.
    p_clean, z_clean = _predict_batched(predict, x, batch_size)
    sums = p_clean.sum(axis=1)
    if (np.abs(sums - 1) > PROBABILITY_SUM_TOL).any() or (p_clean < 0).any():
        raise ValueError(
            f"predict must return softmax probabilities (rows >= 0 summing to 1); got row sums such as {sums[:3].tolist()}"
        )
    label = p_clean.argmax(axis=1)
    p0 = p_clean[np.arange(n), label].astype(np.float64)
    f0 = np.stack([output_values(p_clean, z_clean, label, o) for o in outputs])  # (n_outputs, N)

    n_o, n_m, n_s, l_max = len(outputs), len(methods), len(styles), design.l_max
    n_slots = 2 * n_m + design.n_random
    n_faith = design.n_faithfulness
    unit_map = grid.unit_map
    opened: dict[int, _Open] = {}
    rows: list[dict] = []
    random_rows: list[dict] = []
    curves = None
    if return_curves:
        curves = {
            "methods": np.zeros((n, n_o, n_m, n_s, 2, l_max + 1)),
            "random": np.zeros((n, n_o, n_s, design.n_random, l_max + 1)),
            "faithfulness": np.zeros((n, n_o, n_s, n_faith)),
        }
    # The random orderings as rank maps: pixel p is perturbed at step k iff rank < k.
    random_rank_units = np.full((design.n_random, grid.n_units), l_max, np.int32)
    for j, order in enumerate(design.random_orderings):
        random_rank_units[j, order] = np.arange(l_max)

    def ordering_fill(xi, vals, rank_pix):
        def fill(out, start, stop):
            steps = np.arange(start + 1, stop + 1)  # job step j is k = j + 1
            mask = rank_pix[None] < steps[:, None, None]
            out[:] = xi
            np.copyto(out, vals, where=mask[..., None])
        return fill

    def faith_fill(xi, vals):
        def fill(out, start, stop):
            mask = unit_map[None] == design.faithfulness_units[start:stop, None, None]
            out[:] = xi
            np.copyto(out, vals, where=mask[..., None])
        return fill

    def jobs() -> Iterator[_Job]:
        for i in range(n):
            xi = x[i]
            rel = {m: grid.relevance(maps[m][i]) for m in methods}
            opened[i] = _Open(
                p_ord=np.empty((n_o, n_s, n_slots, l_max)), p_faith=np.empty((n_o, n_s, n_faith)),
                r_faith=np.array([rel[m][design.faithfulness_units] for m in methods]).reshape(n_m, n_faith),
                remaining=n_s * (n_slots * l_max + n_faith),
            )
            rank_maps = []  # one (H, W) rank map per slot, shared by the styles
            for m in methods:
                for d in DIRECTIONS:
                    ranks = np.full(grid.n_units, l_max, np.int32)
                    ranks[unit_order(rel[m], d, design.tie_order)[:l_max]] = np.arange(l_max)
                    rank_maps.append(ranks)
            for si, style in enumerate(styles):
                if style == "mean":
                    vals = np.full((grid.height, grid.width, c_dim), mean_value, np.float32)
                else:
                    vals = uniform_values(design, ids[i], c_dim, value_range).astype(np.float32)[unit_map]
                for slot in range(n_slots):
                    ranks = rank_maps[slot] if slot < 2 * n_m else random_rank_units[slot - 2 * n_m]
                    yield _Job(i, si, slot, l_max, ordering_fill(xi, vals, ranks[unit_map]))
                if n_faith:
                    yield _Job(i, si, -1, n_faith, faith_fill(xi, vals))

    def finish(i: int) -> None:
        st = opened.pop(i)
        for oi, output in enumerate(outputs):
            drops = np.concatenate([np.zeros((n_s, n_slots, 1)), f0[oi, i] - st.p_ord[oi]], axis=2)  # d_0 = 0
            scores = aopc(drops, ls)  # (n_s, n_slots, len(ls))
            delta = f0[oi, i] - st.p_faith[oi]  # (n_s, n_faith)
            res = resolution.get(output, 0.0)
            common = {"output": output, "unit": grid.unit, "label_pred": int(label[i]), "p_pred": p0[i],
                      "f_clean": f0[oi, i]}
            for mi, m in enumerate(methods):
                for si, style in enumerate(styles):
                    row = {"image": ids[i], "method": m, "style": style, **common}
                    for di, d in enumerate(DIRECTIONS):
                        for li, L in enumerate(ls):
                            row[f"aopc_{d}_L{L}"] = scores[si, 2 * mi + di, li]
                    row["faithfulness"], row["faithfulness_status"] = _faithfulness(st.r_faith[mi], delta[si], res)
                    rows.append(row)
            for si, style in enumerate(styles):
                for j in range(design.n_random):
                    row = {"image": ids[i], "style": style, **common, "ordering": j}
                    for li, L in enumerate(ls):
                        row[f"aopc_L{L}"] = scores[si, 2 * n_m + j, li]
                    random_rows.append(row)
            if curves is not None:
                curves["methods"][i, oi] = drops[:, :2 * n_m].reshape(n_s, n_m, 2, l_max + 1).transpose(1, 0, 2, 3)
                curves["random"][i, oi] = drops[:, 2 * n_m:]
                curves["faithfulness"][i, oi] = delta

    # Stream: fill one buffer across jobs, predict when full, scatter p_c back.
    buf = np.empty((batch_size, grid.height, grid.width, c_dim), np.float32)
    segments: list[tuple[int, int, int, int, int, int]] = []
    used = 0
    n_forward = n

    def flush() -> None:
        nonlocal used, n_forward
        if not used:
            return
        probs, logits = _model_outputs(predict(buf[:used]), used)
        n_forward += used
        rows_label = np.empty(used, np.intp)
        for i, _, _, s0, s1, b0 in segments:
            rows_label[b0:b0 + s1 - s0] = label[i]
        values = np.stack([output_values(probs, logits, rows_label, o) for o in outputs])  # (n_outputs, used)
        for i, si, slot, s0, s1, b0 in segments:
            st = opened[i]
            fc = values[:, b0:b0 + s1 - s0]
            if slot >= 0:
                st.p_ord[:, si, slot, s0:s1] = fc
            else:
                st.p_faith[:, si, s0:s1] = fc
            st.remaining -= s1 - s0
            if st.remaining == 0:
                finish(i)
        segments.clear()
        used = 0

    for job in jobs():
        done = 0
        while done < job.n_steps:
            take = min(job.n_steps - done, batch_size - used)
            job.fill(buf[used:used + take], done, done + take)
            segments.append((job.image, job.style, job.slot, done, done + take, used))
            used += take
            done += take
            if used == batch_size:
                flush()
    flush()

    cols = ["image", "method", "style", "output", "unit", "label_pred", "p_pred", "f_clean", *aopc_columns(ls),
            "faithfulness", "faithfulness_status"]
    rcols = ["image", "style", "output", "unit", "ordering", "label_pred", "p_pred", "f_clean",
             *[f"aopc_L{L}" for L in ls]]
    return FidelityResult(
        scores=pd.DataFrame(rows, columns=cols), random=pd.DataFrame(random_rows, columns=rcols),
        methods=methods, styles=styles, n_forward=n_forward, curves=curves, outputs=outputs,
    )


def _faithfulness(r: np.ndarray, delta: np.ndarray, resolution: float = 0.0) -> tuple[float, str]:
    if r.size == 0:
        return float("nan"), "not_computed"
    if np.ptp(r) == 0:
        return float("nan"), "constant_relevance"
    if np.ptp(delta) == 0:
        return float("nan"), "constant_drop"
    if np.ptp(delta) <= resolution:
        return float("nan"), "drop_below_resolution"
    return float(sps.pearsonr(r, delta)[0]), "ok"


def faithfulness_summary(scores: pd.DataFrame, by: Sequence[str] = ("method", "style", "unit")) -> pd.DataFrame:
    """Mean F per group over the images where F is defined; undefined ones counted.

    Columns: ``*by, mean, n_images, n_excluded`` and one ``n_<status>`` column per
    reason of exclusion. No NaN enters a mean.
    """
    by = list(by)
    missing = [c for c in [*by, "faithfulness", "faithfulness_status"] if c not in scores.columns]
    if missing:
        raise KeyError(f"columns {missing} not in the table; it has {list(scores.columns)}")
    out = []
    for key, g in scores.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        ok = g["faithfulness_status"] == "ok"
        row = {**dict(zip(by, key)), "mean": float(g.loc[ok, "faithfulness"].mean()) if ok.any() else float("nan"),
               "n_images": int(ok.sum()), "n_excluded": int((~ok).sum())}
        for s in FAITHFULNESS_STATUS[1:]:
            row[f"n_{s}"] = int((g["faithfulness_status"] == s).sum())
        out.append(row)
    return pd.DataFrame(out)


# The fidelity family in the one registry type: score direction per metric (Tomsett et
# al.: a faithful map has a high MoRF AOPC, a low LeRF AOPC and a high F). The function
# of an AOPC entry is the formula from drop curves; of F, Pearson r from relevance and drops.
METRICS = Registry("fidelity metric")
METRICS.register("aopc_morf", papers=("tomsett",), higher_is_better=True)(aopc)
METRICS.register("aopc_lerf", papers=("tomsett",), higher_is_better=False)(aopc)
METRICS.register("faithfulness", papers=("tomsett",), higher_is_better=True)(_faithfulness)


def higher_is_better(column: str) -> bool:
    """Whether a larger value of a score column (``aopc_lerf_L20``, ``faithfulness``) is better."""
    return METRICS[parse_metric(column)[0]].higher_is_better
