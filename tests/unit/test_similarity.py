"""SSIM, Spearman and the randomization baseline (Arun et al. 2021; Adebayo et al. 2018)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from skimage.metrics import structural_similarity

from salbench.metrics import similarity as sim

# Same float64 operations as scikit-image / scipy: agreement to rounding.
EXACT = 1e-12
H = W = 16


def _maps(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, H, W))


def _pair_reference(a2d, percentile=99.0):
    """PAIR's VisualizeImageGrayscale, written out (sum |a| over channels, clip at p99)."""
    img = np.sum(np.abs(a2d[..., None]), axis=2)
    vmax, vmin = np.percentile(img, percentile), np.min(img)
    return np.clip((img - vmin) / (vmax - vmin), 0, 1)


def test_pair_grayscale_matches_pair_and_sums_channels():
    a = _maps()
    g = sim.pair_grayscale(a)
    assert g.shape == a.shape and g.dtype == np.float32
    for i in range(len(a)):
        np.testing.assert_allclose(g[i], _pair_reference(a[i]), atol=1e-6)
    assert g.min() == 0.0 and g.max() == 1.0
    # Channels: |.| summed over the last axis, as PAIR does.
    a4 = np.stack([a, -a], axis=-1)
    np.testing.assert_allclose(sim.pair_grayscale(a4), sim.pair_grayscale(2 * np.abs(a)), atol=1e-6)
    assert np.array_equal(sim.pair_grayscale(np.ones((1, H, W))), np.zeros((1, H, W), "float32"))
    with pytest.raises(ValueError, match="expected"):
        sim.pair_grayscale(np.ones((H, W)))


@pytest.mark.parametrize("setting", ["arun", "ours"])
def test_ssim_of_identical_maps_is_one_and_equals_skimage(setting):
    g = sim.pair_grayscale(_maps())
    assert sim.ssim(g[0], g[0], setting) == pytest.approx(1.0, abs=EXACT)
    for i in range(1, len(g)):
        ref = structural_similarity(g[0].astype(np.float64), g[i].astype(np.float64),
                                    data_range=sim.SSIM_SETTINGS[setting]["data_range"])
        assert sim.ssim(g[0], g[i], setting) == pytest.approx(ref, abs=EXACT)
        assert sim.ssim(g[0], g[i], setting) < 1.0


def test_arun_data_range_inflates_ssim():
    """Larger stabilising constants with data_range 2 pull SSIM of unrelated maps up."""
    g = sim.pair_grayscale(_maps())
    arun = [sim.ssim(g[0], g[i], "arun") for i in range(1, len(g))]
    ours = [sim.ssim(g[0], g[i], "ours") for i in range(1, len(g))]
    assert all(a > o for a, o in zip(arun, ours))


def test_ssim_errors_are_clear():
    g = sim.pair_grayscale(_maps())
    with pytest.raises(ValueError, match="not valid; choose one of"):
        sim.ssim(g[0], g[1], "default")
    with pytest.raises(ValueError, match="one shape"):
        sim.ssim(g[0], g[1][:8], "ours")
    with pytest.raises(ValueError, match="at least 7 x 7"):
        sim.ssim(g[0][:5, :5], g[1][:5, :5])
    bad = g[1].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sim.ssim(g[0], bad)


def test_spearman_absolute_and_signed():
    a = _maps()
    assert sim.spearman(a[0], a[0], signed=True) == pytest.approx(1.0)
    # Flipping the sign: signed rho is -1, absolute rho is +1.
    assert sim.spearman(a[0], -a[0], signed=True) == pytest.approx(-1.0)
    assert sim.spearman(a[0], -a[0], signed=False) == pytest.approx(1.0)
    ref = sps.spearmanr(np.abs(a[0]).ravel(), np.abs(a[1]).ravel()).statistic
    assert sim.spearman(a[0], a[1], signed=False) == pytest.approx(ref, abs=EXACT)
    assert np.isnan(sim.spearman(np.zeros((H, W)), a[1], signed=True))


def test_similarity_table_per_image():
    a = _maps(4, seed=1)
    b = a + np.random.default_rng(2).normal(scale=0.5, size=a.shape)
    t = sim.similarity_table(a, b, "ours", image_ids=[10, 11, 12, 13])
    assert list(t.columns) == list(sim.SIMILARITY_COLUMNS)
    assert list(t["image"]) == [10, 11, 12, 13]
    ga, gb = sim.pair_grayscale(a), sim.pair_grayscale(b)
    for i in range(4):
        assert t["ssim"][i] == pytest.approx(sim.ssim(ga[i], gb[i], "ours"), abs=EXACT)
        assert t["spearman_signed"][i] == pytest.approx(sim.spearman(a[i], b[i], True), abs=EXACT)
    same = sim.similarity_table(a, a, "arun")
    np.testing.assert_allclose(same[["ssim", "spearman_abs", "spearman_signed"]].to_numpy(), 1.0, atol=EXACT)
    with pytest.raises(ValueError, match="one shape"):
        sim.similarity_table(a, b[:3])
    with pytest.raises(ValueError, match="duplicates"):
        sim.similarity_table(a, b, image_ids=[1, 1, 2, 3])


def test_baseline_pairs_never_pair_an_image_with_itself():
    n, k = 7, 50
    pairs = sim.baseline_pairs(n, np.random.default_rng(3), k)
    assert pairs.shape == (n * k, 2)
    assert (pairs[:, 0] != pairs[:, 1]).all()
    assert np.array_equal(pairs[:, 0], np.repeat(np.arange(n), k))
    assert pairs[:, 1].min() >= 0 and pairs[:, 1].max() <= n - 1
    # Every image is reachable as a partner, the last one included (Arun's randint bug is not reproduced).
    assert set(pairs[:, 1]) == set(range(n))
    # The smallest case: two images can only pair with each other.
    two = sim.baseline_pairs(2, np.random.default_rng(4), 10)
    assert np.array_equal(two[:, 1], 1 - two[:, 0])
    np.testing.assert_array_equal(pairs, sim.baseline_pairs(n, np.random.default_rng(3), k))
    with pytest.raises(ValueError, match="at least 2 images"):
        sim.baseline_pairs(1, np.random.default_rng(0))
    with pytest.raises(TypeError, match="Generator"):
        sim.baseline_pairs(5, 0)


def test_randomization_baseline_is_mean_ssim_over_partners():
    a = _maps(5, seed=5)
    base = sim.randomization_baseline(a, np.random.default_rng(6), "ours", pairs_per_image=8)
    assert list(base.columns) == ["image", "n_pairs", "baseline_ssim"]
    assert (base["n_pairs"] == 8).all() and len(base) == 5
    pairs = sim.baseline_pairs(5, np.random.default_rng(6), 8)
    g = sim.pair_grayscale(a)
    expected = [np.mean([sim.ssim(g[i], g[j], "ours") for i, j in pairs[pairs[:, 0] == k]]) for k in range(5)]
    np.testing.assert_allclose(base["baseline_ssim"], expected, atol=EXACT)
    # Unrelated noise maps are far from identical.
    assert (base["baseline_ssim"] < 0.5).all()
