"""Run-level statistics (issue 14) on simulated scores (no model), and the trust stage's orders."""

import numpy as np
import pandas as pd
import pytest

from salbench.pipeline import localization, trust


def test_run_variance_recovers_a_run_shift_and_skips_one_run_backgrounds():
    rng = np.random.default_rng(0)
    rows = []
    for bg, n_runs in (("perlin", 2), ("mri", 1)):
        for run in range(n_runs):
            for m, level in (("gradient", 0.5), ("grad_cam", 0.2), ("xrai", 0.3)):
                shift = 0.3 * run if m == "grad_cam" else 0.0  # one run moves one method
                for img in range(15):
                    rows.append({"background": bg, "run": run, "method": m, "image": img,
                                 "ap": level + shift + rng.normal(0, 0.02)})
    v = localization.run_variance(pd.DataFrame(rows))
    assert set(v.background) == {"perlin"}  # one run: no run variance to estimate
    share = v.set_index("component")["share"]
    assert share.sum() == pytest.approx(1.0)
    assert share["run:method"] > 0.5 > share["image"]
    assert (v["n_images"] == 15).all()


def test_run_variance_uses_only_the_images_every_run_was_scored_on():
    rng = np.random.default_rng(1)
    rows = [{"background": "perlin", "run": run, "method": m, "image": img, "ap": 0.5 + rng.normal(0, 0.02)}
            for run in range(3) for m in ("gradient", "xrai") for img in range(40 if run == 0 else 10)]
    v = localization.run_variance(pd.DataFrame(rows))
    assert (v["n_images"] == 10).all() and (v["n_runs"] == 3).all()


def test_full_orders_limit_the_costly_methods_to_those_orders():
    from salbench.config import ConfigError, load_profile

    ms = ["gradient", "xrai", "patternnet", "grad_cam"]
    p = load_profile("smoke", trust__orders=["top_down", "bottom_up"], trust__full_orders=["top_down"])
    assert trust.methods_in_order(p, ms, "top_down") == ms
    assert trust.methods_in_order(p, ms, "bottom_up") == ["gradient", "grad_cam"]
    every = load_profile("smoke", trust__orders=["top_down", "bottom_up"])
    assert trust.methods_in_order(every, ms, "bottom_up") == ms
    with pytest.raises(ConfigError, match="trust.full_orders=\\['single'\\]"):
        load_profile("smoke", trust__orders=["top_down"], trust__full_orders=["single"])
