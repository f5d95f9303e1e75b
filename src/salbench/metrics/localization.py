"""Localization metrics: does a saliency map rank the lesion pixels first?

Each image is a binary pixel classification problem: the ground-truth mask ``s``
gives the labels (lesion = positive) and the saliency map ``a`` gives the scores.
Four per-image metrics, all computed from scikit-learn's curves:

``roc_auc``
    Area under the ROC curve (Budding et al. 2021, "ROC-AUC"):
    ``sklearn.metrics.auc(fpr, tpr)`` over ``sklearn.metrics.roc_curve``, which is
    exactly what ``roc_auc_score`` computes for a binary problem.
``ap``
    Average precision (Budding et al. 2021: "mAP" is the mean over images of this
    per-image AP): ``sum_n (R_n - R_{n-1}) P_n`` over the points of
    ``sklearn.metrics.precision_recall_curve``, the formula and curve of
    ``average_precision_score`` (a test pins the two to each other); computing it
    from the curve already sorted for AUPRC saves one sort per image.
``prec99``
    Precision at 99 % specificity (Budding et al. 2021, "PREC99"). Exact definition:
    the operating points are those of ``roc_curve(..., drop_intermediate=False)``,
    one per distinct map value ``t`` ("flag every pixel with score >= t") plus the
    empty point at ``t = +inf``. PREC99 is the precision ``TP / (TP + FP)`` at the
    *lowest* threshold whose false-positive rate is ``<= 1 - specificity`` (0.01):
    the most permissive operating point that keeps 99 % of the negative pixels
    unflagged, hence the largest recall (and, among points of equal recall, the last
    one). See ``prec99`` for ties and the empty point. Unlike the other three
    metrics, PREC99 of a perfect ranking is 1 only if no background pixel has to be
    flagged: a map equal to the mask scores 1, but a map that ranks every lesion
    pixel first with *distinct* background values scores ``P / (P + floor(0.01 N))``
    (``P`` lesion, ``N`` background pixels), about 0.5 on Budding's images.
``auprc``
    Area under the precision-recall curve as Arun et al. 2021 computed it in their
    code: trapezoidal ``sklearn.metrics.auc(recall, precision)`` over
    ``precision_recall_curve`` (not average precision). scikit-learn's curve ends
    at the point (recall 0, precision 1), so the trapezoid from there to the
    first real operating point is part of the area.

Formula choices, each a parameter of every function with the paper's choice as default:

* ``absolute=True``: score ``|a|`` (Budding's code). ``absolute=False`` scores the
  signed map, so strongly negative lesion relevance ranks last.
* ``pixels="brain"``: score only the pixels inside the brain mask ``m`` (Budding's
  code); ground-truth pixels outside the mask are not scored. ``pixels="all"``
  scores every pixel and ignores ``m`` (Arun et al. had no brain mask).
* ties: scikit-learn's. Pixels with equal scores form *one* threshold; they are
  flagged together or not at all, and the ROC and PR curves join consecutive
  thresholds by straight lines (ROC-AUC and AUPRC: trapezoids; AP: steps).
  Note that ``-0.0`` and ``0.0`` are tied.
* ground truth: binary (bool, or 0/1 numbers). Budding's code binarized the
  inverted lesion map as ``lesion_map > 0``; that is the caller's (data) job.

Degenerate input (every case has a defined result or a clear error, never a silent NaN):

* Constant map (all-zero included): one tie group holding every pixel, so the
  only operating points are "nothing" and "everything". With prevalence
  ``p = P / (P + N)`` of the scored pixels, scikit-learn gives ROC-AUC = 0.5,
  AP = p, AUPRC = (1 + p) / 2 (the trapezoid from (recall 0, precision 1) to
  (1, p): Arun's formula rewards a constant map with about one half),
  PREC99 = 0 with ``prec99_ties="strict"`` (the only point with FPR <= 1 % flags
  nothing) and PREC99 = p with ``prec99_ties="interpolate"``.
* Inverted binary map (lesion 0, background 1): ROC-AUC = 0, AP = p,
  AUPRC = p / 2, PREC99 = 0.
* Empty ground truth (no positive scored pixel), or ground truth covering every
  scored pixel (no negative): ROC-AUC and PREC99 are undefined. ``on_empty="raise"``
  (default) raises ``EmptyGroundTruthError`` naming the image; ``on_empty="nan"``
  returns NaN for *every* metric of that image, explicitly.
* NaN or Inf anywhere in a map (scored pixels or not) raises ``NonFiniteMapError``
  naming the images.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import auc, precision_recall_curve, roc_curve

from salbench.errors import NonFiniteMapError  # noqa: F401 (re-exported)
from salbench.registry import Registry, UnknownEntryError

PIXELS = ("brain", "all")
ON_EMPTY = ("raise", "nan")
PREC99_TIES = ("strict", "interpolate")
DEFAULT_METRICS = ("roc_auc", "ap", "prec99", "auprc")


class UnknownMetricError(UnknownEntryError):
    pass


class EmptyGroundTruthError(ValueError):
    """An image has no positive (or no negative) scored pixel: the metric is undefined."""


# --------------------------------------------------------------------------- checks


def _check_choice(name: str, value, valid: Sequence[str]) -> None:
    if value not in valid:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {list(valid)}")


def _where(image) -> str:
    return "the image" if image is None else f"image {image!r}"


def _as_binary(s: np.ndarray, what: str) -> np.ndarray:
    s = np.asarray(s)
    if s.dtype == bool:
        return s
    if s.size and not np.isin(s, (0, 1)).all():
        raise ValueError(
            f"{what} must be binary (bool or 0/1); got values such as "
            f"{np.unique(s[~np.isin(s, (0, 1))])[:5].tolist()} (binarize first, e.g. lesion_map > 0)"
        )
    return s.astype(bool)


def _check_specificity(specificity: float) -> None:
    if not 0.0 < specificity < 1.0:
        raise ValueError(f"specificity must lie strictly between 0 and 1; got {specificity!r}")


# --------------------------------------------------------------------------- curves


class _Pixels:
    """The scored pixels of one image, with each sklearn curve computed once, on demand."""

    def __init__(self, y: np.ndarray, score: np.ndarray):
        self.y = y
        self.score = score
        self.n_pos = int(np.count_nonzero(y))
        self.n_neg = int(y.size - self.n_pos)
        self._roc = None
        self._pr = None

    @property
    def roc(self):
        if self._roc is None:
            # drop_intermediate=False keeps one operating point per distinct score:
            # PREC99 needs the exact last point with FPR <= 1 - specificity.
            self._roc = roc_curve(self.y, self.score, drop_intermediate=False)
        return self._roc

    @property
    def pr(self):
        if self._pr is None:
            self._pr = precision_recall_curve(self.y, self.score)
        return self._pr


def _prepare(a, s, m, *, absolute: bool, pixels: str, image=None) -> _Pixels:
    _check_choice("pixels", pixels, PIXELS)
    a = np.asarray(a, dtype=np.float64)
    s = _as_binary(s, "ground truth s")
    if a.shape != s.shape:
        raise ValueError(f"{_where(image)}: map shape {a.shape} differs from ground-truth shape {s.shape}")
    if not np.isfinite(a).all():
        raise NonFiniteMapError(f"{_where(image)}: the saliency map holds NaN or Inf")
    if pixels == "brain":
        if m is None:
            raise ValueError("pixels='brain' scores brain pixels only and needs a brain mask; pass one or use pixels='all'")
        m = _as_binary(m, "brain mask m")
        if m.shape != a.shape:
            raise ValueError(f"{_where(image)}: mask shape {m.shape} differs from map shape {a.shape}")
        a, s = a[m], s[m]
    else:
        a, s = a.ravel(), s.ravel()
    if absolute:
        a = np.abs(a)
    return _Pixels(s, a)


def _undefined(px: _Pixels, image, on_empty: str) -> bool:
    """True if the metrics are undefined for this image (and on_empty='nan')."""
    if px.n_pos > 0 and px.n_neg > 0:
        return False
    if on_empty == "nan":
        return True
    what = "no lesion (positive) pixel" if px.n_pos == 0 else "no background (negative) pixel"
    raise EmptyGroundTruthError(
        f"{_where(image)}: the ground truth has {what} among the {px.y.size} scored pixels, "
        "so the localization metrics are undefined; drop the image or pass on_empty='nan'"
    )


# --------------------------------------------------------------------------- metrics on curves


def _roc_auc(px: _Pixels) -> float:
    fpr, tpr, _ = px.roc
    return float(auc(fpr, tpr))


def _ap(px: _Pixels) -> float:
    precision, recall, _ = px.pr
    # average_precision_score's formula over the same curve: sum_n (R_n - R_{n-1}) P_n
    # (recall is decreasing along sklearn's arrays, hence the minus sign).
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def _auprc(px: _Pixels) -> float:
    precision, recall, _ = px.pr
    return float(auc(recall, precision))


def _allowed_false_positives(specificity: float, n_neg: int) -> Fraction:
    """``(1 - specificity) N`` exactly: in floating point (1 - 0.9) * 10 is 0.999...,
    which would exclude the operating point at exactly FP = 1. The specificity is read
    as the decimal it was written as (its shortest repr), so 0.9 means 9/10."""
    return (1 - Fraction(repr(float(specificity)))) * n_neg


def _prec99(px: _Pixels, specificity: float, ties: str) -> float:
    fpr, tpr, _ = px.roc
    tp = np.rint(tpr * px.n_pos)  # counts back from sklearn's rates
    fp = np.rint(fpr * px.n_neg).astype(np.int64)
    fp_target = _allowed_false_positives(specificity, px.n_neg)
    # Integer counts against the exact bound: FP <= (1 - spec) N  <=>  FP <= floor(...).
    k = int(np.flatnonzero(fp <= math.floor(fp_target))[-1])  # index 0 (t = +inf, FP 0) always qualifies
    if ties == "interpolate" and fp[k] < fp_target and k + 1 < len(fpr):
        # Expected counts when the next tie group is flagged in random order until
        # FP reaches (1 - spec) N: linear interpolation between ROC points k and k+1.
        fp_target = float(fp_target)
        lam = (fp_target - fp[k]) / (fp[k + 1] - fp[k])
        tp_k = tp[k] + lam * (tp[k + 1] - tp[k])
        return float(tp_k / (tp_k + fp_target))
    flagged = tp[k] + fp[k]
    if flagged == 0:
        return 0.0  # nothing can be flagged at this specificity: no lesion pixel found
    return float(tp[k] / flagged)


# --------------------------------------------------------------------------- public per-image metrics


def roc_auc(a, s, m=None, *, absolute: bool = True, pixels: str = "brain", on_empty: str = "raise") -> float:
    """ROC-AUC of one map (Budding et al. 2021).

    ``sklearn.metrics.auc(fpr, tpr)`` over ``roc_curve`` of the scored pixels, i.e.
    ``roc_auc_score``. Ties: one threshold per distinct value, joined by straight
    lines (a constant map scores 0.5). See the module docstring for ``absolute``,
    ``pixels`` and ``on_empty``.
    """
    _check_choice("on_empty", on_empty, ON_EMPTY)
    px = _prepare(a, s, m, absolute=absolute, pixels=pixels)
    return float("nan") if _undefined(px, None, on_empty) else _roc_auc(px)


def average_precision(a, s, m=None, *, absolute: bool = True, pixels: str = "brain", on_empty: str = "raise") -> float:
    """Average precision of one map (Budding et al. 2021: mAP = mean over images).

    ``sum_n (R_n - R_{n-1}) P_n`` over ``precision_recall_curve`` of the scored pixels,
    equal to ``sklearn.metrics.average_precision_score``. Ties: a tie group is one
    step (a constant map scores the prevalence).
    """
    _check_choice("on_empty", on_empty, ON_EMPTY)
    px = _prepare(a, s, m, absolute=absolute, pixels=pixels)
    return float("nan") if _undefined(px, None, on_empty) else _ap(px)


def prec99(
    a, s, m=None, *, absolute: bool = True, pixels: str = "brain", on_empty: str = "raise",
    specificity: float = 0.99, ties: str = "strict",
) -> float:
    """Precision at ``specificity`` (default 99 %) of one map (Budding et al. 2021, PREC99).

    Operating points: ``roc_curve(y, score, drop_intermediate=False)``, one per
    distinct score ``t`` (flag every pixel with score >= t) plus the empty point at
    ``t = +inf``. With ``P`` lesion and ``N`` background pixels scored:

    ``ties="strict"`` (default): take the lowest threshold whose false-positive rate
    ``FP / N <= 1 - specificity`` (the largest-recall point; among points of equal
    recall the last, most permissive one) and return ``TP / (TP + FP)`` there. The
    comparison is in integer counts, ``FP <= floor((1 - specificity) N)`` with the
    specificity read as the decimal it is written as, so the point at exactly
    ``FP = (1 - specificity) N`` is admissible (floating-point ``1 - 0.9`` is below 0.1). A tie
    group is flagged whole or not at all, so if the top-scoring tie group alone has
    FPR above ``1 - specificity`` the only admissible point flags nothing; PREC99 is
    then 0 (no lesion pixel found at this specificity). A constant map scores 0.

    ``ties="interpolate"``: break ties at random, in expectation, i.e. interpolate
    linearly between that point and the next one until ``FP = (1 - specificity) N``
    and return the expected ``TP / (TP + FP)`` there (ROC-AUC treats ties the same
    way). A constant map scores the prevalence ``P / (P + N)``; where the strict point
    already sits at ``FP = (1 - specificity) N``, both modes agree.

    A perfect ranking (every lesion pixel above every background pixel) scores
    ``P / (P + floor((1 - specificity) N))`` with ``"strict"`` if the background values
    are distinct, but 1 if the background is one tie group (e.g. a map equal to the
    mask); with ``"interpolate"`` it scores ``P / (P + (1 - specificity) N)`` either way.
    """
    _check_choice("on_empty", on_empty, ON_EMPTY)
    _check_choice("ties", ties, PREC99_TIES)
    _check_specificity(specificity)
    px = _prepare(a, s, m, absolute=absolute, pixels=pixels)
    return float("nan") if _undefined(px, None, on_empty) else _prec99(px, specificity, ties)


def auprc(a, s, m=None, *, absolute: bool = True, pixels: str = "brain", on_empty: str = "raise") -> float:
    """AUPRC of one map as Arun et al. 2021 computed it: trapezoidal area under the PR curve.

    ``sklearn.metrics.auc(recall, precision)`` over ``precision_recall_curve`` of the
    scored pixels (not average precision). The curve includes scikit-learn's end
    point (recall 0, precision 1), and a tie group is a straight segment: a constant
    map scores ``(1 + prevalence) / 2``.
    """
    _check_choice("on_empty", on_empty, ON_EMPTY)
    px = _prepare(a, s, m, absolute=absolute, pixels=pixels)
    return float("nan") if _undefined(px, None, on_empty) else _auprc(px)


# The localization family: every metric scores one map against its mask, higher is better.
METRICS = Registry("localization metric", unknown_error=UnknownMetricError)
for _fn, _papers in ((roc_auc, ("budding",)), (average_precision, ("budding",)), (prec99, ("budding",)),
                     (auprc, ("arun",))):
    METRICS.register({"roc_auc": "roc_auc", "average_precision": "ap", "prec99": "prec99", "auprc": "auprc"}[_fn.__name__],
                     papers=_papers, needs_model=False, higher_is_better=True)(_fn)

_FROM_PIXELS: dict[str, Callable[..., float]] = {
    "roc_auc": lambda px, **kw: _roc_auc(px),
    "ap": lambda px, **kw: _ap(px),
    "prec99": lambda px, specificity, ties: _prec99(px, specificity, ties),
    "auprc": lambda px, **kw: _auprc(px),
}


def get_metric(name: str) -> Callable[..., float]:
    """The per-image function registered as ``name``; unknown names list the valid ones."""
    return METRICS[name].fn


# --------------------------------------------------------------------------- batches


def score_maps(
    a_batch,
    s_batch,
    mask_batch=None,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    absolute: bool = True,
    pixels: str = "brain",
    on_empty: str = "raise",
    specificity: float = 0.99,
    prec99_ties: str = "strict",
    image_ids=None,
) -> pd.DataFrame:
    """Score a batch of maps against their ground truth; one row per image.

    Parameters
    ----------
    a_batch : (N, H, W) float
        Saliency maps.
    s_batch : (N, H, W) bool (or 0/1)
        Binary ground truth (lesion = True).
    mask_batch : (N, H, W) or (H, W) bool, optional
        Brain masks (one per image, or one for all). Required when
        ``pixels="brain"``; ignored when ``pixels="all"``.
    metrics : names from ``METRICS`` ("roc_auc", "ap", "prec99", "auprc")
        Columns of the result, in this order.
    absolute : bool, default True
        Score ``|a|`` (Budding's code). False scores the signed map.
    pixels : {"brain", "all"}, default "brain"
        Which pixels are scored (Budding's code: brain only).
    on_empty : {"raise", "nan"}, default "raise"
        An image whose scored ground truth has no positive (or no negative) pixel
        raises ``EmptyGroundTruthError`` naming it, or, with "nan", gets NaN in every
        metric column.
    specificity, prec99_ties : float, {"strict", "interpolate"}
        PREC99's specificity (0.99) and tie rule; see ``prec99``.
    image_ids : sequence of length N, optional
        Values of the ``image`` column and names in error messages (default 0..N-1).

    Returns
    -------
    DataFrame with column ``image`` and one float column per metric. The paper's
    mAP is ``df["ap"].mean()``. Ties, constant maps and other degenerate input
    behave as described in the module docstring. NaN or Inf in any map raises
    ``NonFiniteMapError`` listing every such image.

    Cost: two sorts of the scored pixels per image (``roc_curve`` for ROC-AUC and
    PREC99, ``precision_recall_curve`` for AP and AUPRC), a few milliseconds for a
    140 x 192 image; see ``benchmarks/bench_metrics.py``.
    """
    names = list(metrics)
    if not names:
        raise ValueError(f"metrics is empty; choose from {sorted(METRICS)}")
    for name in names:
        get_metric(name)
    if len(set(names)) != len(names):
        raise ValueError(f"metrics lists a name twice: {names}")
    _check_choice("pixels", pixels, PIXELS)
    _check_choice("on_empty", on_empty, ON_EMPTY)
    _check_choice("prec99_ties", prec99_ties, PREC99_TIES)
    _check_specificity(specificity)

    a = np.asarray(a_batch)
    s = _as_binary(s_batch, "s_batch")
    if a.ndim != 3:
        raise ValueError(f"a_batch must have shape (N, H, W); got {a.shape}")
    if s.shape != a.shape:
        raise ValueError(f"s_batch shape {s.shape} differs from a_batch shape {a.shape}")
    n = len(a)
    ids = list(range(n)) if image_ids is None else list(image_ids)
    if len(ids) != n:
        raise ValueError(f"image_ids has {len(ids)} entries for {n} maps")

    bad = ~np.isfinite(a.reshape(n, -1)).all(axis=1)
    if bad.any():
        where = [ids[i] for i in np.flatnonzero(bad)]
        raise NonFiniteMapError(f"saliency maps of images {where} hold NaN or Inf")

    m = None
    if pixels == "brain":
        if mask_batch is None:
            raise ValueError("pixels='brain' scores brain pixels only and needs mask_batch; pass it or use pixels='all'")
        m = _as_binary(mask_batch, "mask_batch")
        if m.shape == a.shape[1:]:
            m = np.broadcast_to(m, a.shape)
        if m.shape != a.shape:
            raise ValueError(f"mask_batch shape {m.shape} is neither {a.shape} nor {a.shape[1:]}")

    rows = np.full((n, len(names)), np.nan)
    for i in range(n):
        px = _prepare(a[i], s[i], None if m is None else m[i], absolute=absolute, pixels=pixels, image=ids[i])
        if _undefined(px, ids[i], on_empty):
            continue
        for j, name in enumerate(names):
            rows[i, j] = _FROM_PIXELS[name](px, specificity=specificity, ties=prec99_ties)
    out = pd.DataFrame(rows, columns=names)
    out.insert(0, "image", ids)
    return out


# --------------------------------------------------------------------------- baselines


def average_mask(gt_batches: Iterable) -> np.ndarray:
    """Arun et al.'s low baseline: the mean ground-truth mask, as an (H, W) float64 map.

    ``gt_batches`` is an iterable of binary batches ``(n, H, W)`` (or single ``(H, W)``
    masks), e.g. streamed from the train and validation splits on disk; a single
    ``(N, H, W)`` array counts as one batch. Arun et al. averaged the masks of the
    training and validation sets and scored that one map against every test image.
    Whether images without a lesion are included only rescales the map by a constant,
    which changes no rank-based metric (ROC-AUC, AP, PREC99, AUPRC).
    """
    if isinstance(gt_batches, np.ndarray):
        gt_batches = [gt_batches]
    total = None
    count = 0
    for k, batch in enumerate(gt_batches):
        b = _as_binary(batch, f"ground-truth batch {k}")
        if b.ndim == 2:
            b = b[None]
        if b.ndim != 3:
            raise ValueError(f"ground-truth batch {k} must have shape (n, H, W) or (H, W); got {b.shape}")
        if total is None:
            total = np.zeros(b.shape[1:], dtype=np.int64)
        elif b.shape[1:] != total.shape:
            raise ValueError(f"ground-truth batch {k} has image shape {b.shape[1:]}, earlier ones {total.shape}")
        total += b.sum(axis=0, dtype=np.int64)
        count += len(b)
    if count == 0:
        raise ValueError("average_mask got no ground-truth mask")
    return total / count
