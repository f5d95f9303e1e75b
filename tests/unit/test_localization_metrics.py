"""Known answers for the localization metrics (Budding et al. 2021; Arun et al. 2021)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from salbench.metrics import (
    METRICS,
    EmptyGroundTruthError,
    NonFiniteMapError,
    UnknownMetricError,
    auprc,
    average_mask,
    average_precision,
    get_metric,
    prec99,
    roc_auc,
    score_maps,
)

# Closed forms evaluated in float64 over at most a few thousand curve points: the
# rounding error is ~1e-15 per term, far below this.
EXACT = 1e-12
# Our ROC-AUC / AP / AUPRC against scikit-learn's own scorers on the same pixels:
# same curves, same formulas, so only summation order can differ.
SKLEARN_MATCH = 1e-12

H, W = 20, 30
ALL = ("roc_auc", "ap", "prec99", "auprc")


def _ellipse(h=H, w=W) -> np.ndarray:
    r, c = np.mgrid[:h, :w]
    return ((r - (h - 1) / 2) / (0.45 * h)) ** 2 + ((c - (w - 1) / 2) / (0.45 * w)) ** 2 <= 1


@pytest.fixture
def image():
    """One brain mask (ellipse) with two 3 x 3 lesions inside it."""
    m = _ellipse()
    s = np.zeros((H, W), bool)
    s[6:9, 8:11] = True
    s[10:13, 18:21] = True
    assert m[s].all()
    return s, m


def _scores(a, s, m, **kw):
    return {name: METRICS[name](a, s, m, **kw) for name in ALL}


# --------------------------------------------------------------------------- known answers


@pytest.mark.parametrize("pixels", ["brain", "all"])
def test_map_equal_to_mask_scores_one(image, pixels):
    s, m = image
    for name, value in _scores(s.astype(float), s, m, pixels=pixels).items():
        assert value == pytest.approx(1.0, abs=EXACT), name


@pytest.mark.parametrize("value", [0.0, 0.7, -3.0])
def test_constant_map_scores_chance(image, value):
    s, m = image
    p = s[m].mean()  # prevalence among the scored (brain) pixels
    a = np.full((H, W), value)
    assert roc_auc(a, s, m) == pytest.approx(0.5, abs=EXACT)
    assert average_precision(a, s, m) == pytest.approx(p, abs=EXACT)
    assert auprc(a, s, m) == pytest.approx((1 + p) / 2, abs=EXACT)  # sklearn's (0, 1) end point
    assert prec99(a, s, m) == 0.0  # strict: the only point with FPR <= 1 % flags nothing
    assert prec99(a, s, m, ties="interpolate") == pytest.approx(p, abs=EXACT)


def test_inverted_map_scores_low(image):
    s, m = image
    p = s[m].mean()
    a = (~s).astype(float)
    assert roc_auc(a, s, m) == pytest.approx(0.0, abs=EXACT)
    assert average_precision(a, s, m) == pytest.approx(p, abs=EXACT)
    assert auprc(a, s, m) == pytest.approx(p / 2, abs=EXACT)
    assert prec99(a, s, m) == 0.0


def test_prec99_hand_example_takes_last_point_within_one_percent():
    # 3 lesion and 300 background pixels: FPR <= 1 % allows at most 3 false positives.
    # Ranking: .9 L, .8 B, .7 B, .6 L, .5 B, .4 B, .05 L, then 296 B at 0.
    # Thresholds: .9 -> TP1 FP0; .8 -> TP1 FP1; .7 -> TP1 FP2; .6 -> TP2 FP2;
    # .5 -> TP2 FP3 (FPR = 0.01 exactly, admissible); .4 -> FP4 (too many).
    # PREC99 = 2 / (2 + 3) = 0.4 at threshold .5 (not 0.5 at .6: the last point wins).
    y = np.r_[np.ones(3, bool), np.zeros(300, bool)]
    a = np.r_[0.9, 0.6, 0.05, 0.8, 0.7, 0.5, 0.4, np.zeros(296)]
    assert prec99(a, y, pixels="all") == pytest.approx(0.4, abs=EXACT)
    assert prec99(a, y, pixels="all", ties="interpolate") == pytest.approx(0.4, abs=EXACT)
    # At 99.5 % specificity at most 1.5 false positives: strict stops at .8 (TP1 FP1);
    # interpolate goes half-way into the .7 step: TP 1, FP 1.5 -> 1 / 2.5.
    assert prec99(a, y, pixels="all", specificity=0.995) == pytest.approx(0.5, abs=EXACT)
    assert prec99(a, y, pixels="all", specificity=0.995, ties="interpolate") == pytest.approx(0.4, abs=EXACT)


def test_prec99_tied_top_group():
    # 4 lesion, 200 background pixels. The top tie group (score 1) holds 1 lesion and
    # 4 background pixels: FPR 2 % > 1 %, so strict flags nothing (0); interpolate
    # flags half of that group in expectation: TP 0.5, FP 2 -> 0.2 (the group's precision).
    y = np.r_[np.ones(4, bool), np.zeros(200, bool)]
    a = np.r_[1.0, 0.2, 0.2, 0.2, 1.0, 1.0, 1.0, 1.0, np.full(196, 0.1)]
    assert prec99(a, y, pixels="all") == 0.0
    assert prec99(a, y, pixels="all", ties="interpolate") == pytest.approx(0.2, abs=EXACT)


def test_perfect_continuous_ranking(image):
    s, m = image
    rng = np.random.default_rng(0)
    a = rng.uniform(0.0, 0.5, (H, W))
    a[s] = rng.uniform(0.6, 1.0, s.sum())  # every lesion pixel above every other pixel
    n_pos, n_neg = int(s[m].sum()), int((~s)[m].sum())
    assert roc_auc(a, s, m) == pytest.approx(1.0, abs=EXACT)
    assert average_precision(a, s, m) == pytest.approx(1.0, abs=EXACT)
    assert auprc(a, s, m) == pytest.approx(1.0, abs=EXACT)
    # distinct background values: the strict point flags floor(1 % of N) of them
    assert prec99(a, s, m) == pytest.approx(n_pos / (n_pos + np.floor(0.01 * n_neg)), abs=EXACT)
    assert prec99(a, s, m, ties="interpolate") == pytest.approx(n_pos / (n_pos + 0.01 * n_neg), abs=EXACT)


def test_brain_pixels_only(image):
    s, m = image
    rng = np.random.default_rng(1)
    a = s.astype(float)
    a[~m] = rng.uniform(2.0, 5.0, (~m).sum())  # garbage outside the brain outranks the lesion
    for name, value in _scores(a, s, m, pixels="brain").items():
        assert value == pytest.approx(1.0, abs=EXACT), name
    # scoring all pixels, the lesion (1) outranks only the brain background (0):
    # ROC-AUC = P(lesion > background) = brain background / all background; the top 1 %
    # of the background lies outside the brain, so PREC99 finds no lesion pixel.
    assert roc_auc(a, s, m, pixels="all") == pytest.approx((m & ~s).sum() / (~s).sum(), abs=EXACT)
    assert prec99(a, s, m, pixels="all") == 0.0
    # with pixels="all" the mask is ignored: same as passing none
    assert roc_auc(a, s, m, pixels="all") == roc_auc(a, s, None, pixels="all")


def test_absolute_vs_signed(image):
    s, m = image
    rng = np.random.default_rng(2)
    a = rng.uniform(0.0, 0.5, (H, W))
    a[s] = -1.0  # strong negative relevance on the lesion
    n_pos, n_neg = int(s[m].sum()), int((~s)[m].sum())
    scores = _scores(a, s, m)  # absolute=True is the default: |-1| ranks the lesion first
    for name in ("roc_auc", "ap", "auprc"):
        assert scores[name] == pytest.approx(1.0, abs=EXACT), name
    # a perfect ranking over distinct background values (see test_perfect_continuous_ranking)
    assert scores["prec99"] == pytest.approx(n_pos / (n_pos + np.floor(0.01 * n_neg)), abs=EXACT)
    assert roc_auc(a, s, m, absolute=False) == pytest.approx(0.0, abs=EXACT)
    assert prec99(a, s, m, absolute=False) == 0.0


def test_metrics_match_sklearn_and_bruteforce():
    rng = np.random.default_rng(3)
    for trial in range(5):
        y = rng.random(2000) < 0.05
        a = np.round(rng.normal(size=2000) + 1.5 * y, 1)  # rounding makes many ties
        assert roc_auc(a, y, pixels="all", absolute=False) == pytest.approx(roc_auc_score(y, a), abs=SKLEARN_MATCH)
        assert average_precision(a, y, pixels="all", absolute=False) == pytest.approx(
            average_precision_score(y, a), abs=SKLEARN_MATCH)
        prec, rec, _ = precision_recall_curve(y, a)
        assert auprc(a, y, pixels="all", absolute=False) == pytest.approx(auc(rec, prec), abs=SKLEARN_MATCH)
        for spec in (0.99, 0.95):
            assert prec99(a, y, pixels="all", absolute=False, specificity=spec) == pytest.approx(
                _prec_at_spec_reference(a, y, spec), abs=EXACT), (trial, spec)


def _prec_at_spec_reference(a, y, specificity):
    """Slow, readable: scan thresholds from high to low, keep the last with FPR <= 1 - spec."""
    n_neg = int((~y).sum())
    best = 0.0  # nothing flagged
    for t in sorted(set(a.tolist()), reverse=True):
        flagged = a >= t
        fp = int((flagged & ~y).sum())
        if fp > (1 - specificity) * n_neg:
            break
        best = (flagged & y).sum() / flagged.sum()
    return best


# --------------------------------------------------------------------------- batches


def _batch(n=4, seed=4):
    rng = np.random.default_rng(seed)
    m = np.broadcast_to(_ellipse(), (n, H, W)).copy()
    s = np.zeros((n, H, W), bool)
    for i in range(n):
        r, c = rng.integers(5, 12), rng.integers(6, 20)
        s[i, r:r + 3, c:c + 3] = True
    a = rng.normal(size=(n, H, W)) + 2.0 * s
    return a, s, m


def test_score_maps_table_matches_per_image_functions():
    a, s, m = _batch()
    df = score_maps(a, s, m, image_ids=[10, 11, 12, 13])
    assert list(df.columns) == ["image", *ALL]
    assert df["image"].tolist() == [10, 11, 12, 13]
    for i in range(len(a)):
        for name in ALL:
            assert df.loc[i, name] == pytest.approx(METRICS[name](a[i], s[i], m[i]), abs=EXACT)
    # one (H, W) mask for every image gives the same table
    pd.testing.assert_frame_equal(score_maps(a, s, m[0], image_ids=[10, 11, 12, 13]), df)
    # a subset, in the order asked
    sub = score_maps(a, s, m, metrics=["auprc", "roc_auc"])
    assert list(sub.columns) == ["image", "auprc", "roc_auc"]
    np.testing.assert_array_equal(sub["auprc"].to_numpy(), df["auprc"].to_numpy())


def test_score_maps_options_reach_the_metrics():
    a, s, m = _batch()
    signed = score_maps(a, s, m, absolute=False, pixels="all", prec99_ties="interpolate", specificity=0.95)
    for i in range(len(a)):
        assert signed.loc[i, "roc_auc"] == pytest.approx(roc_auc(a[i], s[i], absolute=False, pixels="all"), abs=EXACT)
        assert signed.loc[i, "prec99"] == pytest.approx(
            prec99(a[i], s[i], absolute=False, pixels="all", ties="interpolate", specificity=0.95), abs=EXACT)


def test_empty_ground_truth_raises_naming_image_or_gives_explicit_nan():
    a, s, m = _batch()
    s[2] = False
    with pytest.raises(EmptyGroundTruthError, match=r"image 'c'.*no lesion"):
        score_maps(a, s, m, image_ids=list("abcd"))
    df = score_maps(a, s, m, on_empty="nan")
    assert df.loc[2, list(ALL)].isna().all()
    assert df.drop(index=2)[list(ALL)].notna().all().all()
    with pytest.raises(EmptyGroundTruthError, match="no lesion"):
        roc_auc(a[2], s[2], m[2])
    assert np.isnan(prec99(a[2], s[2], m[2], on_empty="nan"))


def test_ground_truth_covering_every_scored_pixel_is_undefined():
    a, s, m = _batch()
    s[1] = m[1]
    with pytest.raises(EmptyGroundTruthError, match=r"image 1.*no background"):
        score_maps(a, s, m)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_map_raises_naming_images(bad):
    a, s, m = _batch()
    a[1, 0, 0] = bad  # outside the brain: still refused
    a[3, 10, 15] = bad
    with pytest.raises(NonFiniteMapError, match=r"\[1, 3\]"):
        score_maps(a, s, m)
    with pytest.raises(NonFiniteMapError):
        auprc(a[3], s[3], m[3])


def test_unknown_metric_lists_valid_names():
    a, s, m = _batch()
    with pytest.raises(UnknownMetricError, match=r"'iou'.*\['ap', 'auprc', 'prec99', 'roc_auc'\]"):
        score_maps(a, s, m, metrics=["roc_auc", "iou"])
    with pytest.raises(KeyError):
        get_metric("mAP")
    assert get_metric("ap") is average_precision


def test_input_errors():
    a, s, m = _batch()
    with pytest.raises(ValueError, match="needs mask_batch"):
        score_maps(a, s)
    with pytest.raises(ValueError, match="needs a brain mask"):
        roc_auc(a[0], s[0])
    with pytest.raises(ValueError, match="pixels='lesion'"):
        score_maps(a, s, m, pixels="lesion")
    with pytest.raises(ValueError, match="binary"):
        score_maps(a, s * 0.5, m)
    with pytest.raises(ValueError, match="differs"):
        score_maps(a, s[:, :-1], m)
    with pytest.raises(ValueError, match="specificity"):
        prec99(a[0], s[0], m[0], specificity=1.0)
    with pytest.raises(ValueError, match="ties="):
        prec99(a[0], s[0], m[0], ties="random")
    with pytest.raises(ValueError, match="twice"):
        score_maps(a, s, m, metrics=["ap", "ap"])
    # 0/1 integer ground truth is accepted as binary
    pd.testing.assert_frame_equal(score_maps(a, s.astype(np.uint8), m), score_maps(a, s, m))


# --------------------------------------------------------------------------- average mask


def test_average_mask_streams_batches():
    _, s, _ = _batch(n=6)
    expected = s.mean(axis=0)
    np.testing.assert_allclose(average_mask([s[:2], s[2:5], s[5:]]), expected, atol=EXACT)
    np.testing.assert_allclose(average_mask(b for b in (s[:3], s[3:])), expected, atol=EXACT)
    np.testing.assert_allclose(average_mask(s), expected, atol=EXACT)  # one array = one batch
    np.testing.assert_allclose(average_mask(list(s)), expected, atol=EXACT)  # (H, W) masks
    assert average_mask(s).dtype == np.float64
    with pytest.raises(ValueError, match="no ground-truth"):
        average_mask([])
    with pytest.raises(ValueError, match="image shape"):
        average_mask([s, s[:, :-1]])


def test_average_mask_as_a_map_scores_like_any_map():
    a, s, m = _batch(n=6)
    avg = average_mask(s)
    df = score_maps(np.broadcast_to(avg, s.shape), s, m)
    assert df[list(ALL)].notna().all().all()
    # rank metrics ignore the scale, so counting images without lesions changes nothing
    scaled = score_maps(np.broadcast_to(avg * 0.5, s.shape), s, m)
    pd.testing.assert_frame_equal(df, scaled)


@pytest.mark.parametrize("specificity", [0.9, 0.8])
def test_prec99_admits_the_point_at_exactly_the_allowed_false_positives(specificity):
    # N = 10 background pixels, one scored first, then 2 lesion pixels, then the rest.
    # At specificity 0.9 (0.8) one (two) false positives are allowed: the point that
    # flags the first background pixel and both lesion pixels (TP 2, FP 1) qualifies.
    # In floating point 1 - 0.9 < 0.1 = FP / N, which used to exclude it (PREC99 0).
    y = np.r_[np.zeros(10, bool), np.ones(2, bool)]
    a = np.r_[1.0, np.linspace(0.4, 0.1, 9), 0.9, 0.8]
    fp = round((1 - specificity) * 10)
    expected = 2 / 3 if fp == 1 else 2 / 4  # spec 0.8: the next background pixel (0.4) is flagged too
    assert prec99(a, y, pixels="all", specificity=specificity) == pytest.approx(expected, abs=EXACT)
    assert prec99(a, y, pixels="all", specificity=specificity, ties="interpolate") == pytest.approx(
        expected, abs=EXACT)
