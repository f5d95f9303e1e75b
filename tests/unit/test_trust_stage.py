"""The trust stage's table shaping (Arun et al. 2021, notebook 06) on hand-made maps and scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from salbench import tables
from salbench.config import ConfigError, load_profile
from salbench.metrics import similarity as sim
from salbench.pipeline import trust
from salbench.pipeline.models import ModelVariant

H, W = 20, 24


@pytest.fixture(scope="module")
def profile():
    return load_profile("smoke")


def _maps(rng, n):
    return rng.normal(size=(n, H, W)).astype(np.float32)


def _gt_mask(n):
    gt = np.zeros((n, H, W), bool)
    gt[:, 4:8, 5:9] = True
    mask = np.zeros((n, H, W), bool)
    mask[:, 2:18, 2:22] = True
    return gt, mask


def test_step_rows_on_hand_made_maps():
    rng = np.random.default_rng(0)
    a, b = _maps(rng, 3), _maps(rng, 3)
    gt, mask = _gt_mask(3)
    ids = np.array([5, 7, 9])
    same = trust.step_rows(a, a, ids, gt, mask, "top_down", 0, "")
    assert list(same.image) == [5, 7, 9]
    for col in ("ssim", "ssim_arun", "spearman_abs", "spearman_signed"):
        np.testing.assert_allclose(same[col], 1.0, atol=1e-12)
    other = trust.step_rows(a, b, ids, gt, mask, "single", 2, "fc1")
    assert set(other.order) == {"single"} and set(other.step) == {2} and set(other.layer) == {"fc1"}
    ga, gb = sim.pair_grayscale(a), sim.pair_grayscale(b)
    for i in range(3):
        assert other.ssim[i] == pytest.approx(sim.ssim(ga[i], gb[i], "ours"))
        assert other.ssim_arun[i] == pytest.approx(sim.ssim(ga[i], gb[i], "arun"))
        assert other.spearman_signed[i] == pytest.approx(sim.spearman(a[i], b[i], signed=True))
        # AP of the step's |map| over brain pixels (Budding's scoring).
        m = mask[i]
        assert other.ap[i] == pytest.approx(average_precision_score(gt[i][m], np.abs(b[i][m])))
    # Arun's data range 2 inflates SSIM of dissimilar maps relative to ours.
    assert (other.ssim_arun > other.ssim).all()


def test_new_layer_names_the_layer_each_step_redraws():
    layers = ["conv1", "conv2", "fc", "predictions"]

    def v(order, step):
        return ModelVariant("classifier", "perlin", 0, (), order, step)

    assert trust.new_layer(v("top_down", 0), layers) == ""
    assert [trust.new_layer(v("top_down", k), layers) for k in (1, 2, 3, 4)] == layers[::-1]
    assert [trust.new_layer(v("single", k), layers) for k in (1, 2, 3, 4)] == layers[::-1]
    assert [trust.new_layer(v("bottom_up", k), layers) for k in (1, 2, 3, 4)] == layers


def _cascade(rng, methods, n_images, shift, steps=3):
    rows = []
    for m in methods:
        for order in ("top_down", "bottom_up"):
            for step in range(steps + 1):
                for i in range(n_images):
                    s = 1.0 if step == 0 else 0.3 + shift[m] + rng.normal(0, 0.02)
                    rows.append({"background": "perlin", "method": m, "image": i, "order": order, "step": step,
                                 "layer": "", "ssim": s - 0.1, "ssim_arun": s, "spearman_abs": s,
                                 "spearman_signed": s, "ap": 0.5})
    return pd.DataFrame(rows)


def _baseline(rng, methods, n_images):
    rows = [{"background": "perlin", "method": m, "setting": setting, "image": i, "n_pairs": 50,
             "baseline_ssim": 0.3 + rng.normal(0, 0.02)}
            for m in methods for setting in ("arun", "ours") for i in range(n_images)]
    return pd.DataFrame(rows)


def test_randomization_verdicts_use_the_last_top_down_step(profile):
    rng = np.random.default_rng(1)
    methods = ["gradient", "xrai"]
    cascade = _cascade(rng, methods, 12, {"gradient": 0.0, "xrai": 0.3})
    # A bottom-up curve far above the baseline must not enter the verdict.
    cascade.loc[(cascade.order == "bottom_up") & (cascade.step > 0), "ssim_arun"] = 0.95
    full = trust.full_randomization(cascade)
    assert set(full.order) == {"top_down"} and set(full.step) == {3} and len(full) == 24
    v = trust.randomization_verdicts(cascade, _baseline(rng, methods, 12), profile).set_index("method")
    assert v.loc["xrai", "verdict"] == "did not pass"
    assert v.loc["gradient", "verdict"] == "pass"
    assert v.loc["xrai", "mean_score"] == pytest.approx(full[full.method == "xrai"].ssim_arun.mean())
    assert set(v.setting) == {"arun"}
    tables.get_spec("randomization_verdicts").check(v.reset_index())
    tables.get_spec("randomization_cascade").check(cascade[trust.CASCADE_COLUMNS])


def test_constant_scores_are_not_testable_rather_than_an_error(profile):
    rng = np.random.default_rng(4)
    cascade = _cascade(rng, ["gradient", "grad_cam"], 6, {"gradient": 0.3, "grad_cam": 0.0})
    baseline = _baseline(rng, ["gradient", "grad_cam"], 6)
    # All-zero maps: every SSIM (step and baseline) is 1.
    cascade.loc[cascade.method == "grad_cam", "ssim_arun"] = 1.0
    baseline.loc[baseline.method == "grad_cam", "baseline_ssim"] = 1.0
    v = trust.randomization_verdicts(cascade, baseline, profile).set_index("method")
    assert v.loc["grad_cam", "verdict"] == "not testable" and "constant" in v.loc["grad_cam", "note"]
    assert v.loc["gradient", "verdict"] == "did not pass"


def _scores(rng, n_images=10, unet_pairs=True):
    rows = []

    def add(kind, method, pair, values, note=""):
        rows.append(pd.DataFrame({"background": "perlin", "kind": kind, "method": method, "image": np.arange(n_images),
                                  "pair": pair, "ssim": values, "note": note}))

    for m, level in (("gradient", 0.2), ("xrai", 0.7)):
        add("repeatability", m, "vgg0-vgg1", level + 0.1 + rng.normal(0, 0.03, n_images))
        add("repeatability", m, "vgg0-vgg2", level + 0.1 + rng.normal(0, 0.03, n_images))
        add("reproducibility", m, "vgg0-second0", level + rng.normal(0, 0.03, n_images))
    add("reproducibility", "grad_cam", "vgg0-second0", np.nan, "not applicable: ModelKindError: no Conv2D layer")
    add("repeatability", "grad_cam", "vgg0-vgg1", np.full(n_images, 1.0))  # constant: no t test
    if unet_pairs:
        add("unet", "unet", "unet0-unet1", 0.95 + rng.normal(0, 0.01, n_images))
    else:
        add("unet", "unet", "-", np.nan, "not applicable: one U-Net run")
    return pd.concat(rows, ignore_index=True)


def test_consistency_verdicts_keep_not_applicable_rows(profile):
    rng = np.random.default_rng(2)
    scores = _scores(rng)
    tables.get_spec("consistency_scores").check(scores)
    table, tukey, rvr = trust.consistency_verdicts(scores, profile)
    tables.get_spec("consistency_verdicts").check(table)
    t = table.set_index(["kind", "method", "baseline"])
    assert t.loc[("repeatability", "xrai", "0.5"), "verdict"] == "pass"
    assert t.loc[("repeatability", "gradient", "0.5"), "verdict"] == "did not pass"
    assert t.loc[("reproducibility", "xrai", "unet"), "verdict"] == "did not pass"
    na = t.loc[("reproducibility", "grad_cam", "-")]
    assert na.verdict == "not applicable" and "ModelKindError" in na.note
    assert t.loc[("repeatability", "grad_cam", "-"), "note"] == "not testable: every image has SSIM 1"
    r = rvr.set_index("method")
    assert r.loc["gradient", "result"] == "repeatability higher"
    assert len(tukey) > 0


def test_consistency_verdicts_without_a_unet_pair(profile):
    table, tukey, rvr = trust.consistency_verdicts(_scores(np.random.default_rng(3), unet_pairs=False), profile)
    assert set(table.verdict) == {"not applicable"}
    assert (table[table.kind == "repeatability"].note.str.contains("U-Net")).any()
    assert tukey.empty and rvr.empty


def test_image_selection_and_methods(profile):
    idx = trust.trust_indices(profile)
    assert len(idx) == profile.trust.n_images and (idx % 2 == 1).all()  # lesion (class-2) images
    p = load_profile("quick")
    assert len(trust.method_indices(p, "xrai")) == p.trust.n_images_expensive
    assert len(trust.method_indices(p, "gradient")) == p.trust.n_images
    assert trust.methods(profile) == list(profile.trust.methods)  # smoke names its subset
    assert trust.methods(p)[:8] == list(trust.ARUN_METHODS)
    budding = trust.methods(load_profile("smoke", trust__extension="budding", trust__methods=[]))
    assert budding[:8] == list(trust.ARUN_METHODS) and "patternnet" in budding and len(set(budding)) == len(budding)
    assert trust.methods(load_profile("smoke", trust__extension="none", trust__methods=[])) == list(trust.ARUN_METHODS)
    with pytest.raises(KeyError, match="unknown saliency method 'nope'"):
        trust.methods(load_profile("smoke", trust__methods=["nope"]))
    with pytest.raises(ValueError, match="'sobel' does not explain a classifier"):
        trust.methods(load_profile("smoke", trust__methods=["sobel"]))


@pytest.mark.parametrize("override, match", [
    ({"trust__n_images": 1}, r"trust.n_images=1: must be in 2\.\."),
    ({"trust__orders": ["bottom_up"]}, r"trust.orders=\['bottom_up'\].*'top_down'"),
    ({"trust__orders": ["top_down", "sideways"]}, r"trust.orders=.*sideways"),
    ({"trust__n_images_expensive": 3}, r"trust.n_images_expensive=3: must be in 2\.\.2"),
    ({"trust__ssim_setting": "x"}, r"trust.ssim_setting='x' is not valid"),
    ({"trust__extension": "all"}, r"trust.extension='all' is not valid"),
    ({"trust__baseline_pairs": 0}, r"trust.baseline_pairs=0"),
])
def test_trust_config_errors(override, match):
    with pytest.raises(ConfigError, match=match):
        load_profile("smoke", **override)
