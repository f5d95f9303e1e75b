"""The randomized-weights comparison is paired: trained and randomized means come
from the same images even when randomized maps cover only a prefix of them."""

import numpy as np
import pandas as pd

from salbench.config import load_profile
from salbench.saliency import localization_stage as loc


def _scores():
    rows = []
    for background in ("perlin", "mri"):
        for image in range(6):
            rows.append(("trained", "gradient", background, image, 0.9 if image < 2 else 0.1))
            rows.append(("baseline", "sobel", background, image, 0.3))
            if image < 2:
                rows.append(("randomized", "gradient", background, image, 0.2))
    df = pd.DataFrame(rows, columns=["model", "method", "background", "image", "auprc"])
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
    scored, rand = loc.scored_indices(profile), loc.randomized_indices(profile)
    assert len(scored) == profile.localization.n_images and len(rand) == 7
    np.testing.assert_array_equal(rand, scored[:7])


def test_summary_table_gives_verdicts_to_trained_rows_only():
    profile = load_profile("smoke", localization__n_bootstrap=100)
    scores = _scores()
    summary = loc.summary(scores, profile)
    verdicts = pd.DataFrame([
        {"metric": "auprc", "method": "gradient", "baseline": b, "role": role, "verdict": "pass", "background": bg}
        for bg in ("perlin", "mri") for b, role in (("avg_mask", "low"), ("unet", "high"))])
    table = loc.summary_table(summary, verdicts)
    assert len(table) == 6  # 2 backgrounds x (trained, randomized, baseline)
    trained = table[table.model == "trained"]
    assert (trained["auprc_vs_low"] == "pass").all() and (trained["auprc_vs_high"] == "pass").all()
    others = table[table.model != "trained"]
    assert others["auprc_vs_low"].isna().all() and others["auprc_vs_high"].isna().all()
    n = table.set_index(["background", "model"])["n_images"]
    assert n[("perlin", "trained")] == 6 and n[("perlin", "randomized")] == 2
    np.testing.assert_allclose(table.set_index(["background", "model"]).loc[("mri", "baseline"), "mean_auprc"], 0.3)
