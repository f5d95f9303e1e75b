"""Known answers for the perturbation fidelity metrics (Tomsett et al. 2020; PROTOCOLS A2).

Every model here is a numpy callable, so these run in the eager process without TensorFlow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salbench.errors import NonFiniteMapError
from salbench.metrics.fidelity import output_resolution
from salbench.metrics import (
    aopc,
    aopc_columns,
    faithfulness_summary,
    make_design,
    parse_metric,
    score_fidelity,
    uniform_values,
    unit_grid,
    unit_order,
)

# The engine and the slow loop feed identical float32 inputs to a float64 numpy
# model; only BLAS summation order over a batch row may differ (~1e-16 relative).
ENGINE_MATCH = 1e-10
# Closed forms in float64 over at most a few hundred terms.
EXACT = 1e-12

H, W = 10, 13  # neither side a multiple of 3: unit=3 has partial edge patches


# --------------------------------------------------------------------------- tiny models


class LinearSoftmax:
    """p = softmax(flatten(x) @ w), computed in float64; records every batch size."""

    def __init__(self, shape, n_classes=3, seed=0, scale=0.3):
        self.w = np.random.default_rng(seed).normal(scale=scale, size=(int(np.prod(shape)), n_classes))
        self.calls: list[int] = []

    def __call__(self, xb):
        assert xb.dtype == np.float32
        self.calls.append(len(xb))
        z = xb.reshape(len(xb), -1).astype(np.float64) @ self.w
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def _data(n=4, c=1, seed=1, methods=("signed", "ties", "constant")):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=(n, H, W, c)).astype(np.float32)
    maps = {}
    for m in methods:
        if m == "signed":
            maps[m] = rng.normal(size=(n, H, W))
        elif m == "ties":
            maps[m] = rng.integers(-1, 2, size=(n, H, W)).astype(np.float64)  # 3 levels: many ties
        else:
            maps[m] = np.zeros((n, H, W))
    return x, maps


# --------------------------------------------------------------------------- slow reference


def _ref_relevance(a, unit):
    """Per-unit sums by explicit patch slicing, row-major over the patch grid."""
    nr, nc = -(-H // unit), -(-W // unit)
    r = np.zeros(nr * nc)
    for i in range(nr):
        for j in range(nc):
            r[i * nc + j] = a[i * unit:(i + 1) * unit, j * unit:(j + 1) * unit].sum()
    return r


def _ref_perturb(img, units, unit, values):
    """img (H, W, C) float64; set every pixel of each unit to its value (C,)."""
    nc = -(-W // unit)
    out = img.copy()
    for u in units:
        i, j = divmod(int(u), nc)
        out[i * unit:(i + 1) * unit, j * unit:(j + 1) * unit, :] = values[u]
    return out


def _ref_f(predict, img, c):
    return float(predict(img[None].astype(np.float32))[0, c])


def _reference(predict, x, maps, design, styles, mean_value, value_range, ls):
    """Slow, readable float64 loop: one image, one ordering, one step at a time."""
    unit, l_max = design.grid.unit, design.l_max
    n_units = design.grid.n_units
    prio = {int(u): k for k, u in enumerate(design.tie_order)}
    rows, rrows = [], []
    for i in range(len(x)):
        img = x[i].astype(np.float64)
        p0 = predict(img[None].astype(np.float32))[0]
        c = int(np.argmax(p0))
        f0 = float(p0[c])
        for style in styles:
            if style == "mean":
                values = np.full((n_units, x.shape[3]), np.float32(mean_value), np.float64)
            else:
                values = uniform_values(design, i, x.shape[3], value_range).astype(np.float32).astype(np.float64)

            def curve(order):
                d = [0.0]
                for k in range(1, l_max + 1):
                    d.append(f0 - _ref_f(predict, _ref_perturb(img, order[:k], unit, values), c))
                return [sum(d[:L + 1]) / (L + 1) for L in ls]

            for m, a in maps.items():
                r = _ref_relevance(a[i], unit)
                morf = sorted(range(n_units), key=lambda u: (-r[u], prio[u]))
                lerf = sorted(range(n_units), key=lambda u: (r[u], prio[u]))
                row = {"image": i, "method": m, "style": style}
                row.update(zip([f"aopc_morf_L{L}" for L in ls], curve(morf)))
                row.update(zip([f"aopc_lerf_L{L}" for L in ls], curve(lerf)))
                fu = design.faithfulness_units
                delta = [f0 - _ref_f(predict, _ref_perturb(img, [u], unit, values), c) for u in fu]
                rf = r[fu]
                row["faithfulness"] = np.corrcoef(rf, delta)[0, 1] if np.ptp(rf) > 0 else np.nan
                rows.append(row)
            for j, order in enumerate(design.random_orderings):
                rrows.append({"image": i, "style": style, "ordering": j,
                              **dict(zip([f"aopc_L{L}" for L in ls], curve(list(order))))})
    return pd.DataFrame(rows), pd.DataFrame(rrows)


@pytest.mark.parametrize("unit", [1, 3])
@pytest.mark.parametrize("channels", [1, 2])
def test_engine_equals_slow_loop(unit, channels):
    x, maps = _data(n=3, c=channels)
    model = LinearSoftmax((H, W, channels), scale=2.0 / np.sqrt(H * W) * 3)
    design = make_design(H, W, unit=unit, rng=np.random.default_rng(7), l_max=12, n_random=3, n_faithfulness=10)
    ls = [0, 1, 5, 12]
    styles = ["mean", "uniform"]
    res = score_fidelity(model, x, maps, design, styles=styles, mean_value=0.4, value_range=(-1.0, 2.0),
                         ls=ls, batch_size=7)
    ref, ref_random = _reference(model, x, maps, design, styles, 0.4, (-1.0, 2.0), ls)
    got = res.scores.set_index(["image", "method", "style"]).sort_index()
    want = ref.set_index(["image", "method", "style"]).sort_index()
    assert list(got.index) == list(want.index)
    cols = aopc_columns(ls) + ["faithfulness"]
    np.testing.assert_allclose(got[cols].to_numpy(float), want[cols].to_numpy(float), rtol=0, atol=ENGINE_MATCH)
    gr = res.random.set_index(["image", "style", "ordering"]).sort_index()
    wr = ref_random.set_index(["image", "style", "ordering"]).sort_index()
    rcols = [f"aopc_L{L}" for L in ls]
    np.testing.assert_allclose(gr[rcols].to_numpy(float), wr[rcols].to_numpy(float), rtol=0, atol=ENGINE_MATCH)
    # AOPC at L = 0 is 0 by definition (d_0 = f(x) - f(x)).
    assert (got["aopc_morf_L0"] == 0).all() and (got["aopc_lerf_L0"] == 0).all()
    # the drops are not all zero (the test would be vacuous otherwise)
    assert got["aopc_morf_L12"].abs().max() > 1e-3


def test_batches_are_full_and_bounded():
    """Batches run across images and jobs: every call but the last of each pass is full."""
    x, maps = _data(n=5)
    model = LinearSoftmax((H, W, 1))
    design = make_design(H, W, unit=2, rng=np.random.default_rng(0), l_max=9, n_random=2, n_faithfulness=5)
    res = score_fidelity(model, x, maps, design, mean_value=0.0, value_range=(0, 1), batch_size=16, ls=[9])
    clean, perturbed = model.calls[:1], model.calls[1:]  # 5 clean images fit one batch
    n_perturbed = 5 * 2 * ((2 * 3 + 2) * 9 + 5)
    assert clean == [5] and sum(perturbed) == n_perturbed
    assert all(b == 16 for b in perturbed[:-1]) and 0 < perturbed[-1] <= 16
    assert res.n_forward == 5 + n_perturbed
    assert len(res.scores) == 5 * 3 * 2 and len(res.random) == 5 * 2 * 2


# --------------------------------------------------------------------------- known answers


class RegionMean:
    """Two classes: p_1 = mean of x over a known region, p_0 = 1 - p_1 (x in [0, 1])."""

    def __init__(self, region):
        self.region = region

    def __call__(self, xb):
        p1 = xb[..., 0][:, self.region].astype(np.float64).mean(axis=1)
        return np.stack([1 - p1, p1], axis=1)


@pytest.mark.parametrize("unit", [1, 2])
def test_oracle_ordering_gives_largest_morf_and_smallest_lerf(unit):
    region = np.zeros((H, W), bool)
    region[2:8, 4:10] = True  # 36 px, whole 2x2 patches at unit=2
    rng = np.random.default_rng(3)
    x = np.zeros((2, H, W, 1), np.float32)
    x[:, region, 0] = rng.uniform(0.6, 1.0, size=(2, region.sum()))  # class 1, p_1 >= 0.6
    x[:, ~region, 0] = rng.uniform(0.0, 1.0, size=(2, (~region).sum()))
    model = RegionMean(region)
    oracle = np.where(region, x[..., 0], 0.0)  # each pixel's exact contribution (times |region|)
    design = make_design(H, W, unit=unit, rng=np.random.default_rng(0), l_max=8, n_random=50, n_faithfulness=0)
    ls = list(range(9))
    res = score_fidelity(model, x, {"oracle": oracle}, design, styles=["mean"], mean_value=0.0, ls=ls)
    grid = unit_grid(H, W, unit)
    for i in range(2):
        row = res.scores[res.scores["image"] == i].iloc[0]
        # Best possible drop after k steps: the k largest unit contributions.
        contrib = np.sort(grid.relevance(oracle[i]))[::-1] / region.sum()
        best = np.concatenate([[0.0], np.cumsum(contrib[:8])])
        np.testing.assert_allclose([row[f"aopc_morf_L{L}"] for L in ls], aopc(best, ls), atol=EXACT)
        # LeRF removes zero-relevance units outside the region: no drop, the least possible.
        assert all(row[f"aopc_lerf_L{L}"] == 0 for L in ls)
        rand = res.random[res.random["image"] == i]
        assert (rand["aopc_L8"] <= row["aopc_morf_L8"] + EXACT).all()
        assert (rand["aopc_L8"] >= row["aopc_lerf_L8"]).all()
        assert (rand["aopc_L8"] > 0).any()


class LinearProbability:
    """Two classes, p_1 = 0.5 + w . x exactly linear (small w keeps it inside (0, 1))."""

    def __init__(self, w):
        self.w = w

    def __call__(self, xb):
        p1 = 0.5 + (xb[..., 0].astype(np.float64) * self.w).sum(axis=(1, 2))
        return np.stack([1 - p1, p1], axis=1)


@pytest.mark.parametrize("unit", [1, 3])
def test_faithfulness_is_one_for_exact_contributions(unit):
    rng = np.random.default_rng(5)
    w = rng.normal(scale=0.5 / (H * W), size=(H, W))
    x = rng.uniform(0, 1, size=(3, H, W, 1)).astype(np.float32)
    mean = 0.25
    model = LinearProbability(w)
    label = model(x).argmax(axis=1)
    sign = np.where(label == 1, 1.0, -1.0)[:, None, None]  # p_0 = 1 - p_1 flips the sign
    contribution = sign * w * (x[..., 0].astype(np.float64) - np.float32(mean))
    design = make_design(H, W, unit=unit, rng=np.random.default_rng(1), l_max=5, n_random=0, n_faithfulness=20)
    res = score_fidelity(model, x, {"exact": contribution, "negated": -contribution}, design,
                         styles=["mean"], mean_value=mean, ls=[5])
    f = res.scores.set_index("method")["faithfulness"]
    np.testing.assert_allclose(f.loc["exact"], 1.0, atol=1e-9)
    np.testing.assert_allclose(f.loc["negated"], -1.0, atol=1e-9)


def test_aopc_formula():
    d = np.array([0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(aopc(d, [0, 1, 3]), [0.0, 0.5, 1.5], atol=EXACT)


def test_unit_grid_partial_edges_and_relevance():
    g = unit_grid(H, W, 3)
    assert (g.n_rows, g.n_cols, g.n_units) == (4, 5, 20)
    sizes = np.bincount(g.unit_map.ravel())
    assert sizes[0] == 9 and sizes[4] == 3 * 1 and sizes[-1] == 1  # last column 1 px wide, last row 1 px high
    a = np.arange(H * W, dtype=float).reshape(H, W)
    np.testing.assert_allclose(g.relevance(a), _ref_relevance(a, 3), atol=EXACT)
    assert g.relevance(a).sum() == a.sum()


# --------------------------------------------------------------------------- ties, determinism


def test_tie_rule_is_deterministic_and_documented():
    r = np.array([1.0, 0.0, 1.0, -2.0, 0.0, 1.0])
    index = np.arange(6)
    assert unit_order(r, "morf", index).tolist() == [0, 2, 5, 1, 4, 3]
    assert unit_order(r, "lerf", index).tolist() == [3, 1, 4, 0, 2, 5]
    prio = np.array([5, 4, 3, 2, 1, 0])
    assert unit_order(r, "morf", prio).tolist() == [5, 2, 0, 4, 1, 3]
    assert unit_order(r, "lerf", prio).tolist() == [3, 4, 1, 5, 2, 0]
    # -0.0 and 0.0 are tied; a constant map follows the tie priority both ways
    assert unit_order(np.array([0.0, -0.0, 0.0]), "morf", np.array([2, 0, 1])).tolist() == [2, 0, 1]
    design = make_design(H, W, unit=1, rng=np.random.default_rng(0), l_max=10, n_random=0, n_faithfulness=0)
    const = np.zeros(H * W)
    assert (unit_order(const, "morf", design.tie_order) == design.tie_order).all()
    assert (unit_order(const, "lerf", design.tie_order) == design.tie_order).all()
    idx = make_design(H, W, unit=1, rng=np.random.default_rng(0), l_max=10, tie_break="index")
    assert (idx.tie_order == np.arange(H * W)).all()


def test_random_parts_identical_on_rerun_and_independent_of_chunking():
    def design(seed):
        return make_design(H, W, unit=2, rng=np.random.default_rng(seed), l_max=6, n_random=4, n_faithfulness=8)

    d1, d2, d3 = design(11), design(11), design(12)
    for name in ("tie_order", "random_orderings", "faithfulness_units"):
        assert np.array_equal(getattr(d1, name), getattr(d2, name))
        assert not np.array_equal(getattr(d1, name), getattr(d3, name))
    assert d1.uniform_seed == d2.uniform_seed != d3.uniform_seed
    assert all(len(set(o)) == 6 for o in d1.random_orderings) and len(set(d1.faithfulness_units)) == 8
    v = uniform_values(d1, 3, 1, (-1, 2))
    assert np.array_equal(v, uniform_values(d2, 3, 1, (-1, 2)))
    assert v.min() >= -1 and v.max() < 2 and not np.array_equal(v, uniform_values(d1, 4, 1, (-1, 2)))

    x, maps = _data(n=5)
    model = LinearSoftmax((H, W, 1))
    kw = dict(mean_value=0.5, value_range=(0, 1), ls=[3, 6])
    full = score_fidelity(model, x, maps, d1, batch_size=13, **kw)
    again = score_fidelity(model, x, maps, d2, batch_size=13, **kw)
    pd.testing.assert_frame_equal(full.scores, again.scores)
    pd.testing.assert_frame_equal(full.random, again.random)
    # Scoring images 2 and 3 alone (with their global ids), at another batch size, gives the same rows.
    part = score_fidelity(model, x[2:4], {m: a[2:4] for m, a in maps.items()}, d1, batch_size=5,
                          image_ids=[2, 3], **kw)
    cols = aopc_columns([3, 6]) + ["faithfulness"]
    want = full.scores[full.scores["image"].isin([2, 3])].reset_index(drop=True)
    np.testing.assert_allclose(part.scores[cols].to_numpy(float), want[cols].to_numpy(float), atol=ENGINE_MATCH)


def test_curves_match_scores():
    x, maps = _data(n=2)
    design = make_design(H, W, unit=1, rng=np.random.default_rng(2), l_max=10, n_random=2, n_faithfulness=5)
    res = score_fidelity(LinearSoftmax((H, W, 1)), x, maps, design, mean_value=0.0, value_range=(0, 1),
                         ls=[4, 10], return_curves=True)
    cm = res.curves["methods"]
    assert cm.shape == (2, 1, 3, 2, 2, 11) and res.curves["random"].shape == (2, 1, 2, 2, 11)
    assert (cm[..., 0] == 0).all()
    row = res.scores[(res.scores["image"] == 1) & (res.scores["method"] == "ties") & (res.scores["style"] == "uniform")]
    np.testing.assert_allclose(row["aopc_lerf_L10"].iloc[0], cm[1, 0, 1, 1, 1].mean(), atol=EXACT)
    assert res.curves["faithfulness"].shape == (2, 1, 2, 5)


# --------------------------------------------------------------------------- faithfulness exclusions


def test_constant_relevance_is_excluded_and_counted():
    x, maps = _data(n=3)
    design = make_design(H, W, unit=1, rng=np.random.default_rng(0), l_max=3, n_random=0, n_faithfulness=10)
    res = score_fidelity(LinearSoftmax((H, W, 1)), x, maps, design, mean_value=0.0, value_range=(0, 1), ls=[3])
    const = res.scores[res.scores["method"] == "constant"]
    assert const["faithfulness"].isna().all() and (const["faithfulness_status"] == "constant_relevance").all()
    summ = faithfulness_summary(res.scores).set_index(["method", "style"])
    assert summ.loc[("constant", "mean"), "n_excluded"] == 3 and summ.loc[("constant", "mean"), "n_images"] == 0
    assert np.isnan(summ.loc[("constant", "mean"), "mean"])
    ok = res.scores[(res.scores["method"] == "signed") & (res.scores["style"] == "mean")]["faithfulness"]
    np.testing.assert_allclose(summ.loc[("signed", "mean"), "mean"], ok.mean(), atol=EXACT)
    assert summ.loc[("signed", "mean"), "n_images"] == 3


def test_constant_drop_is_flagged():
    """A saturated model (output independent of x) has Delta constant: F undefined."""
    x, maps = _data(n=2)
    design = make_design(H, W, unit=1, rng=np.random.default_rng(0), l_max=3, n_random=0, n_faithfulness=10)
    res = score_fidelity(lambda xb: np.tile([0.0, 1.0], (len(xb), 1)), x, maps, design, styles=["mean"],
                         mean_value=0.0, ls=[3])
    signed = res.scores[res.scores["method"] == "signed"]
    assert (signed["faithfulness_status"] == "constant_drop").all() and signed["faithfulness"].isna().all()


# --------------------------------------------------------------------------- outputs and resolution


class TwoLogits:
    """z = (0, b + a * sum(x)): the logit margin of class 1 is b + a * sum(x); returns logits only."""

    def __init__(self, a=2.0, b=30.0):
        self.a, self.b = a, b

    def __call__(self, xb):
        z1 = self.b + self.a * xb.reshape(len(xb), -1).astype(np.float64).sum(axis=1)
        return {"logits": np.stack([np.zeros(len(xb)), z1], axis=1).astype(np.float32)}


def test_logit_margin_of_a_two_logit_model_has_the_closed_form_aopc():
    """Perturbing pixel u to 0 lowers the margin by a * x_u, so with the map equal to x the
    MoRF drop after k steps is a * (sum of the k largest pixels) and AOPC(L) its mean over
    k = 0..L. The probability is saturated (margin >= 30: p = 1 - 1e-13), so its AOPC is ~0."""
    x, _ = _data(n=2)
    model = TwoLogits()
    design = make_design(H, W, unit=1, rng=np.random.default_rng(0), l_max=12, n_random=0, n_faithfulness=0)
    res = score_fidelity(model, x, {"x": x[..., 0]}, design, styles=["mean"], mean_value=0.0, ls=[5, 12],
                         outputs=("probability", "logit_margin"))
    margin = res.scores[res.scores["output"] == "logit_margin"].set_index("image")
    prob = res.scores[res.scores["output"] == "probability"].set_index("image")
    for i in range(2):
        top = np.sort(x[i].ravel().astype(np.float64))[::-1]
        drops = model.a * np.concatenate([[0.0], np.cumsum(top)])
        for L in (5, 12):
            assert margin.loc[i, f"aopc_morf_L{L}"] == pytest.approx(drops[:L + 1].mean(), rel=1e-5)
        assert margin.loc[i, "f_clean"] == pytest.approx(model.b + model.a * x[i].sum(), rel=1e-6)
        assert margin.loc[i, "label_pred"] == 1 and abs(prob.loc[i, "aopc_morf_L12"]) < 1e-10
    with pytest.raises(ValueError, match="logit_margin.*logits"):
        score_fidelity(LinearSoftmax((H, W, 1)), x, {"x": x[..., 0]}, design, styles=["mean"], mean_value=0.0,
                       ls=[5], outputs=("logit_margin",))


def test_logits_and_probabilities_give_the_same_probability_scores():
    """A model read as logits (probability = float64 softmax) scores as the same model read
    as probabilities."""
    x, maps = _data(n=3)
    lin = LinearSoftmax((H, W, 1))

    def logits(xb):
        return {"logits": xb.reshape(len(xb), -1).astype(np.float64) @ lin.w}

    design = make_design(H, W, unit=2, rng=np.random.default_rng(1), l_max=6, n_random=2, n_faithfulness=5)
    kw = dict(mean_value=0.3, value_range=(0, 1), ls=[3, 6])
    a = score_fidelity(lin, x, maps, design, **kw).scores
    b = score_fidelity(logits, x, maps, design, **kw).scores
    cols = aopc_columns([3, 6]) + ["faithfulness", "p_pred"]
    np.testing.assert_allclose(a[cols].to_numpy(float), b[cols].to_numpy(float), atol=1e-12, equal_nan=True)


class BatchNoise:
    """Adds to every logit a float32-sized error that depends on the batch (size, position)."""

    def __init__(self, eps):
        self.eps = eps

    def __call__(self, xb):
        z1 = xb.reshape(len(xb), -1).astype(np.float64).mean(axis=1)
        noise = self.eps * np.sin(np.arange(len(xb)) + 7 * len(xb))
        return {"logits": np.stack([np.zeros(len(xb)), z1 + noise], axis=1)}


def test_output_resolution_measures_batch_dependence():
    x, _ = _data(n=9)
    exact = output_resolution(BatchNoise(0.0), x, batch_sizes=(1, 4, 9), rng=np.random.default_rng(0))
    assert (exact["resolution"] == 0).all() and set(exact["output"]) == {"probability", "logit_margin"}
    noisy = output_resolution(BatchNoise(1e-4), x, batch_sizes=(1, 4, 9), rng=np.random.default_rng(0))
    margin = noisy.set_index("output").loc["logit_margin", "resolution"]
    assert 1e-5 < margin <= 2e-4  # at most twice the error; some inputs meet opposite errors
    # The probability moves by p (1 - p) times the margin's error: near 0.25 here.
    assert 0 < noisy.set_index("output").loc["probability", "resolution"] < 0.3 * margin
    assert noisy["n_calls"].iloc[0] == 3 * 4 + 1


def test_faithfulness_is_undefined_where_drops_stay_within_the_resolution():
    x, maps = _data(n=2)
    design = make_design(H, W, unit=1, rng=np.random.default_rng(0), l_max=3, n_random=0, n_faithfulness=10)
    kw = dict(styles=["mean"], mean_value=0.0, ls=[3], outputs=("logit_margin",))
    model = TwoLogits(a=1e-4, b=0.0)  # each single-pixel drop is below 1e-4
    fine = score_fidelity(model, x, maps, design, **kw).scores
    coarse = score_fidelity(model, x, maps, design, resolution={"logit_margin": 1e-3}, **kw).scores
    signed = fine["method"] == "signed"
    assert (fine.loc[signed, "faithfulness_status"] == "ok").all()
    assert (coarse.loc[signed, "faithfulness_status"] == "drop_below_resolution").all()
    assert coarse.loc[signed, "faithfulness"].isna().all()


# --------------------------------------------------------------------------- errors


def test_bad_input_raises_clear_errors():
    x, maps = _data(n=2)
    model = LinearSoftmax((H, W, 1))
    d = make_design(H, W, unit=1, rng=np.random.default_rng(0), l_max=4, n_random=0, n_faithfulness=0)
    with pytest.raises(ValueError, match="style='gray'"):
        score_fidelity(model, x, maps, d, styles=["gray"], mean_value=0.0)
    with pytest.raises(ValueError, match="mean_value"):
        score_fidelity(model, x, maps, d, styles=["mean"])
    with pytest.raises(ValueError, match="value_range"):
        score_fidelity(model, x, maps, d, styles=["uniform"])
    with pytest.raises(ValueError, match="softmax probabilities"):
        score_fidelity(lambda xb: np.ones((len(xb), 3)), x, maps, d, styles=["mean"], mean_value=0.0, ls=[4])
    with pytest.raises(ValueError, match="0..4"):
        score_fidelity(model, x, maps, d, styles=["mean"], mean_value=0.0, ls=[5])
    bad = {"signed": maps["signed"].copy()}
    bad["signed"][1, 0, 0] = np.nan
    with pytest.raises(NonFiniteMapError, match=r"'signed'.*\[1\]"):
        score_fidelity(model, x, bad, d, styles=["mean"], mean_value=0.0, ls=[4])
    with pytest.raises(ValueError, match="x_batch must have shape"):
        score_fidelity(model, x[..., 0], maps, d, styles=["mean"], mean_value=0.0, ls=[4])
    with pytest.raises(ValueError, match="l_max=200 exceeds"):
        make_design(H, W, unit=3, rng=np.random.default_rng(0), l_max=200)
    with pytest.raises(ValueError, match="unit=11"):
        unit_grid(H, W, 11)
    with pytest.raises(ValueError, match="tie_break"):
        make_design(H, W, unit=1, rng=np.random.default_rng(0), tie_break="first")
    with pytest.raises(TypeError, match="Generator"):
        make_design(H, W, unit=1, rng=0)
    assert parse_metric("aopc_lerf_L60") == ("aopc_lerf", 60) and parse_metric("faithfulness") == ("faithfulness", None)
    with pytest.raises(ValueError, match="aopc_morf_L"):
        parse_metric("aopc_L20")
