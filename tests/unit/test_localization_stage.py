"""The randomized-weights comparison is paired: trained and randomized means come
from the same images even when randomized maps cover only a prefix of them."""

import numpy as np
import pandas as pd

from salbench.config import load_profile
from salbench.pipeline import localization as loc
from salbench.pipeline import selection


def _scores():
    rows = []
    for background in ("perlin", "mri"):
        for image in range(6):
            rows.append(("trained", "gradient", background, image, 0.9 if image < 2 else 0.1))
            rows.append(("baseline", "sobel", background, image, 0.3))
            if image < 2:
                rows.append(("randomized", "gradient", background, image, 0.2))
    df = pd.DataFrame(rows, columns=["model", "method", "background", "image", "auprc"]).assign(run=0, selected=True)
    for col in ("roc_auc", "ap", "prec99"):
        df[col] = df["auprc"]
    return df


def test_randomization_summary_uses_only_images_with_randomized_maps():
    profile = load_profile("smoke", localization__n_bootstrap=100)
    out = loc.randomization_summary(_scores(), profile)
    out = out[out.metric == "auprc"].set_index(["background", "model"])
    assert set(out.index.get_level_values("model")) == {"trained", "randomized"}
    assert (out["n"] == 2).all()
    # All-images trained mean would be (2*0.9 + 4*0.1)/6; paired it is 0.9.
    np.testing.assert_allclose(out.loc[("perlin", "trained"), "mean"], 0.9)
    np.testing.assert_allclose(out.loc[("mri", "randomized"), "mean"], 0.2)


def test_randomized_indices_are_a_prefix_of_scored_indices():
    profile = load_profile("quick", localization__n_randomized_images=7)
    scored, rand = selection.scored_indices(profile), selection.randomized_indices(profile)
    assert len(scored) == profile.localization.n_images and len(rand) == 7
    np.testing.assert_array_equal(rand, scored[:7])


def test_other_runs_are_scored_on_a_prefix_of_the_selected_runs_images():
    profile = load_profile("quick", localization__n_images_other_runs=10)
    selected = selection.scored_indices_of_run(profile, selected=True)
    other = selection.scored_indices_of_run(profile, selected=False)
    assert len(selected) == profile.localization.n_images and len(other) == 10
    np.testing.assert_array_equal(other, selected[:10])
    every = load_profile("quick", localization__n_images_other_runs=None)
    np.testing.assert_array_equal(selection.scored_indices_of_run(every, selected=False), selected)


def _verdicts(converged=True):
    return pd.DataFrame([
        {"metric": metric, "method": "gradient", "baseline": b, "role": role, "verdict": "pass",
         "converged": converged, "background": bg, "run": 0, "selected": True}
        for metric in ("auprc", "ap") for bg in ("perlin", "mri") for b, role in (("avg_mask", "low"), ("unet", "high"))])


def test_summary_table_gives_verdicts_to_trained_rows_only():
    profile = load_profile("smoke", localization__n_bootstrap=100)
    scores = _scores().assign(constant_map=False)
    scores.loc[(scores.model == "randomized") & (scores.image == 0), "constant_map"] = True
    table = loc.summary_table(loc.summary(scores, profile), _verdicts(), scores)
    assert len(table) == 6  # 2 backgrounds x (trained, randomized, baseline)
    verdict_cols = ["auprc_vs_low", "auprc_vs_high", "ap_vs_low", "ap_vs_high"]
    trained = table[table.model == "trained"]
    assert (trained[verdict_cols] == "pass").all().all()
    assert table[table.model != "trained"][verdict_cols].isna().all().all()
    t = table.set_index(["background", "model"])
    assert t.loc[("perlin", "trained"), "n_images"] == 6 and t.loc[("perlin", "randomized"), "n_images"] == 2
    assert t.loc[("mri", "randomized"), "n_constant_maps"] == 1 and t.loc[("mri", "trained"), "n_constant_maps"] == 0
    np.testing.assert_allclose(t.loc[("mri", "baseline"), "mean_auprc"], 0.3)


def test_summary_table_flags_unconverged_fits():
    profile = load_profile("smoke", localization__n_bootstrap=100)
    scores = _scores().assign(constant_map=False)
    table = loc.summary_table(loc.summary(scores, profile), _verdicts(converged=False), scores)
    assert set(table.loc[table.model == "trained", "auprc_vs_low"]) == {"pass (not converged)"}


def test_score_flags_constant_maps_over_brain_pixels():
    gt = np.zeros((3, 8, 8), bool)
    gt[:, 2:4, 2:4] = True
    mask = np.zeros((3, 8, 8), bool)
    mask[:, 1:7, 1:7] = True
    maps = np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)
    maps[1] = 2.0
    maps[2][mask[2]] = -1.0  # constant |map| on the brain, other values outside it
    df = loc._score(maps, gt, mask, np.arange(3))
    assert df["constant_map"].tolist() == [False, True, True]
    p = gt[0][mask[0]].mean()
    np.testing.assert_allclose(df.loc[1, "auprc"], (1 + p) / 2, atol=1e-4)
