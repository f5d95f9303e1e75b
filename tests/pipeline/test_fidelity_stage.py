"""The fidelity stage's table shaping on hand-made scores: the random baseline, the
oracle questions (with each metric's own direction) and the agreement with AP."""

import numpy as np
import pandas as pd
import pytest

from salbench.config import load_profile
from salbench.pipeline import fidelity as fs


@pytest.fixture
def profile():
    return load_profile("smoke")


def hand_made(profile, n_images=6):
    """Oracle best on every metric; method quality a > b > c; AP agrees with that order."""
    quality = {"oracle": 3.0, "a": 2.0, "b": 1.0, "c": 0.0, "random": -1.0}
    rows, ap_rows, rand_rows = [], [], []
    rng = np.random.default_rng(0)
    for image in range(n_images):
        for method, q in quality.items():
            row = {"background": "perlin", "model": "trained", "method": method, "image": image, "style": "mean",
                   "output": "probability", "unit": 20, "faithfulness": q / 4 + 0.01 * rng.normal(), "faithfulness_status": "ok"}
            for L in fs.ls(profile):
                row[f"aopc_morf_L{L}"] = q + 0.01 * rng.normal()
                row[f"aopc_lerf_L{L}"] = -q + 0.01 * rng.normal()  # lower is better
            rows.append(row)
            if method not in ("oracle", "random"):
                ap_rows.append({"background": "perlin", "method": method, "image": image, "ap": q / 10})
        for ordering in range(3):
            rand_rows.append({"background": "perlin", "unit": 20, "style": "mean", "output": "probability",
                              "image": image,
                              "ordering": ordering, **{f"aopc_L{L}": 0.1 * ordering for L in fs.ls(profile)}})
    # Image 1's drop is too small for its share (9.0) to count.
    share = pd.DataFrame([{"background": "perlin", "unit": 20, "style": "mean", "output": "probability",
                           "method": "a", "image": image,
                           "drop_share_from_lesion": value, "lesion_units_hit": 0.25, "final_drop": drop}
                          for image, value, drop in ((0, 0.5, 0.4), (1, 9.0, 0.01))])
    resolution = pd.DataFrame([{"background": "perlin", "output": "probability", "resolution": 1e-7}])
    return {"scores": pd.DataFrame(rows), "random": pd.DataFrame(rand_rows), "lesion_share": share,
            "resolution": resolution}, pd.DataFrame(ap_rows)


def test_random_baseline_is_the_mean_and_spread_of_data_set_means(profile):
    results, _ = hand_made(profile)
    base = fs.random_baseline(results["random"], profile)
    assert len(base) == len(fs.ls(profile))
    row = base.iloc[0]
    assert row["mean"] == pytest.approx(0.1) and row.n_orderings == 3 and row.n_images == 6
    assert row.ci_low == pytest.approx(np.quantile([0, 0.1, 0.2], 0.025))


def test_validity_respects_each_metrics_direction(profile):
    results, ap = hand_made(profile)
    v = fs.validity(results, ap, profile).set_index(["column", "question", "method"])
    for col in fs.metric_columns(profile):
        assert v.loc[(col, "oracle_rank", "oracle"), "value"] == 1  # best, whichever direction
        assert v.loc[(col, "oracle_beats_method", "a"), "value"] == 1.0
        # The methods' ranking by the metric equals their ranking by AP on every image.
        assert v.loc[(col, "spearman_with_ap", "all"), "value"] == pytest.approx(1.0)
    morf, lerf = "aopc_morf_L20", "aopc_lerf_L20"
    assert v.loc[(morf, "oracle_minus_random", "oracle"), "value"] > 0
    assert v.loc[(lerf, "oracle_minus_random", "oracle"), "value"] < 0
    assert v.loc[(morf, "lesion_share", "a"), "value"] == 0.5
    assert v.loc[(morf, "lesion_share", "a"), "n_images"] == 1
    assert v.loc[(morf, "final_drop", "a"), "value"] == pytest.approx(0.205)


def test_validity_ties_the_oracle_with_methods_within_the_resolution(profile):
    """A method whose mean is above the oracle's by less than the resolution ties with it:
    the oracle keeps rank 1 and does not 'beat' it."""
    results, ap = hand_made(profile)
    s = results["scores"]
    col = "aopc_morf_L20"
    oracle = s.loc[s.method == "oracle", ["image", col]].set_index("image")[col]
    a = s.method == "a"
    s.loc[a, col] = s.loc[a, "image"].map(oracle).to_numpy() + 5e-8
    v = fs.validity(results, ap, profile).set_index(["column", "question", "method"])
    assert v.loc[(col, "oracle_rank", "oracle"), "value"] == 1
    assert v.loc[(col, "oracle_beats_method", "a"), "value"] == 0.0
    results["resolution"]["resolution"] = 1e-9
    v = fs.validity(results, ap, profile).set_index(["column", "question", "method"])
    assert v.loc[(col, "oracle_rank", "oracle"), "value"] == 2


def test_method_sets_follow_the_profile(profile):
    assert fs.method_sets(profile, 20) == {"tomsett": list(fs.TOMSETT_METHODS),
                                           "tomsett_with_edge": [*fs.TOMSETT_METHODS, "sobel"]}
    paper = load_profile("paper")  # extension "all" (the quick profile: none)
    sets = fs.method_sets(paper, paper.fidelity.headline_unit)
    assert "all_with_edge" in sets and "unet" not in sets["all"] and "sobel" not in sets["all"]
    assert set(fs.methods_for_unit(paper, 1)) == {*fs.TOMSETT_METHODS, "sobel", "oracle", "random"}
    quick = load_profile("quick")
    assert set(fs.method_sets(quick, quick.fidelity.headline_unit)) == {"tomsett", "tomsett_with_edge"}


def _region_model(region):
    """p(class 1) = mean of the image over `region`: only lesion pixels move the output."""
    def predict(x):
        p1 = x[..., 0][:, region].mean(axis=1)
        return np.stack([1 - p1, p1], axis=1)
    return predict


def test_lesion_share_and_forward_count_on_a_known_model():
    from salbench.metrics import fidelity as fm

    region = np.zeros((8, 8), bool)
    region[2:4, 4:6] = True  # exactly one 2 x 2 unit
    x = np.full((1, 8, 8, 1), 0.9, np.float32)
    gt = region[None]
    maps = {"oracle": gt.astype(np.float32), "anti": -gt.astype(np.float32) - 0.01 * np.arange(64).reshape(1, 8, 8)}
    d = fm.make_design(8, 8, unit=2, rng=np.random.default_rng(0), l_max=4, n_random=2, n_faithfulness=3)
    res = fm.score_fidelity(_region_model(region), x, maps, d, styles=("mean",), mean_value=0.0,
                            ls=(4,), batch_size=7, image_ids=np.array([5]), return_curves=True)
    share = fs.lesion_share(res, maps, gt, d, np.array([5])).set_index("method")
    assert share.loc["oracle", "lesion_units_hit"] == 0.25  # 1 lesion unit among the first 4
    assert share.loc["oracle", "drop_share_from_lesion"] == pytest.approx(1.0)
    assert share.loc["anti", "lesion_units_hit"] == 0.0  # the lesion unit comes last
    assert np.isnan(share.loc["anti", "drop_share_from_lesion"])  # no drop at all: undefined
    assert (share.image == 5).all()
    n = 1 * (1 + 1 * ((2 * 2 + 2) * 4 + 3))
    assert res.n_forward == n
    assert fs.n_forward(1, 2, d) == 1 * (1 + len(fs.STYLES) * ((2 * 2 + 2) * 4 + 3))  # both styles


def test_retie_ties_published_scores_at_their_precision_and_refuses_measured_runs(tmp_path):
    """Three methods at 0.000000 +- float noise below 1e-6 on every image and two apart:
    re-tied, the cell's alpha is that of the tied ranks and every image counts as decided
    by ties; a folder with a measured resolution is refused."""
    import krippendorff

    quick = load_profile("quick")
    rng = np.random.default_rng(0)
    rows = []
    methods = [*fs.TOMSETT_METHODS, "sobel"]
    for bg in ("perlin", "mri"):
        for image in range(6):
            for style in fs.STYLES:
                for unit in quick.fidelity.units:
                    for j, m in enumerate(methods):
                        row = {"background": bg, "model": "trained", "method": m, "image": image, "style": style,
                               "unit": unit, "faithfulness": rng.normal(), "faithfulness_status": "ok"}
                        for col in fs.metric_columns(quick):
                            if col != "faithfulness":
                                row[col] = rng.uniform(-4e-7, 4e-7) if j < 3 else 0.5 * j + 0.1 * rng.uniform()
                        rows.append(row)
    pd.DataFrame(rows).to_csv(tmp_path / "fidelity_scores.csv", index=False)
    tabs = fs.retie_published(quick, tmp_path)
    a = tabs["tomsett_alpha"]
    cell = a[(a.background == "mri") & (a.unit == 5) & (a["style"] == "mean") & ~a.with_edge
             & (a.column == "aopc_lerf_L40")].iloc[0]
    want = krippendorff.alpha(reliability_data=np.tile([2.0, 2.0, 2.0, 4.0], (6, 1)), level_of_measurement="ordinal")
    assert cell.alpha == pytest.approx(want) and cell.n_images_tied == 6 and cell.output == "probability"
    assert set(tabs) == set(fs.RETIED_TABLES)
    (tmp_path / "fidelity_resolution.csv").write_text("background,output,resolution\n")
    with pytest.raises(ValueError, match="measured resolution"):
        fs.retie_published(quick, tmp_path)
