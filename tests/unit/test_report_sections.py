"""Sections 2 and 3's generated tables put each number in its cell."""

import pandas as pd
import pytest

from salbench.report import BLOCKS, ReportError, Tables
from tests.unit.test_claims_tomsett_arun import alpha_table, verdicts


def write(folder, name, df):
    df.to_csv(folder / f"{name}.csv", index=False)


def test_alpha_table_cells_follow_tomsetts_layout(tmp_path):
    a = alpha_table(lambda we, st, metric, L: {("mean", True): 0.41, ("uniform", True): 0.22,
                                               ("mean", False): 0.33, ("uniform", False): 0.11}[(st, we)]
                    + (0.01 if metric == "aopc_lerf" else 0) + (L or 0) / 1e4)
    a["ci_low"], a["ci_high"] = a["alpha"] - 0.05, a["alpha"] + 0.05
    write(tmp_path, "tomsett_alpha", a)
    lines = BLOCKS["tomsett_alpha_table"](Tables(tmp_path), "mri").splitlines()
    assert lines[0] == "| metric | mean, with Sobel | uniform, with Sobel | mean, without Sobel | uniform, without Sobel |"
    assert lines[2] == "| F | 0.41 (0.36 to 0.46) | 0.22 (0.17 to 0.27) | 0.33 (0.28 to 0.38) | 0.11 (0.06 to 0.16) |"
    assert lines[3].startswith("| AOPC_MoRF L=20 | 0.41 ") and lines[5].startswith("| AOPC_LeRF L=20 | 0.42 ")
    with pytest.raises(ReportError, match="background='ct'"):
        BLOCKS["tomsett_alpha_table"](Tables(tmp_path), "ct")


def test_randomization_table_and_a_missing_method(tmp_path):
    v = verdicts(lambda bg, m: "pass" if bg == "perlin" else "did not pass")
    v = v.assign(mean_score=0.1234, mean_baseline=0.2, p_value=0.0012)
    write(tmp_path, "randomization_verdicts", v[~((v.background == "mri") & (v.method == "xrai"))])
    text = BLOCKS["randomization_table"](Tables(tmp_path))
    row = next(line for line in text.splitlines() if line.startswith("| XRAI |"))
    assert row == "| XRAI | 0.123 / 0.200 / pass (0.0012) | - |"
    assert "| Gradient | 0.123 / 0.200 / pass (0.0012) | 0.123 / 0.200 / did not pass (0.0012) |" in text


def test_consistency_table_names_a_not_applicable_method(tmp_path):
    rows = []
    for kind, m, ssim, note in (("repeatability", "gradient", 0.3, ""), ("reproducibility", "gradient", 0.2, ""),
                                ("repeatability", "grad_cam", 0.6, ""),
                                ("reproducibility", "grad_cam", None, "not applicable: no conv layer"),
                                ("unet", "unet", 0.9, "")):
        for img, d in enumerate((-0.01, 0.01)):
            rows.append({"background": "perlin", "kind": kind, "method": m, "image": img, "pair": "a-b",
                         "ssim": None if ssim is None else ssim + d, "note": note})
    write(tmp_path, "consistency_scores", pd.DataFrame(rows))
    write(tmp_path, "consistency_verdicts", pd.DataFrame(
        [{"background": "perlin", "kind": k, "method": m, "baseline": b, "verdict": "did not pass"}
         for k, m in (("repeatability", "gradient"), ("reproducibility", "gradient"), ("repeatability", "grad_cam"))
         for b in ("0.5", "unet")]))
    write(tmp_path, "repeatability_vs_reproducibility", pd.DataFrame(
        [{"background": "perlin", "method": "gradient", "result": "repeatability higher", "p_value": 0.001},
         {"background": "perlin", "method": "grad_cam", "result": "not applicable", "p_value": float("nan")}]))
    lines = BLOCKS["consistency_table"](Tables(tmp_path), "perlin").splitlines()
    assert lines[2] == ("| Gradient | 0.300 ± 0.014 | did not pass / did not pass | 0.200 ± 0.014 | "
                        "did not pass / did not pass | repeatability higher (p 0.001) |")
    assert lines[3].startswith("| Grad-CAM | 0.600 ± 0.014 | did not pass / did not pass | n/a: no conv layer | - |")
    assert lines[4] == "| U-Net (two runs; the high baseline) | 0.900 ± 0.014 | - | - | - | - |"


def test_run_spread_table_compares_runs_on_the_images_every_run_has(tmp_path):
    # Run 1 (selected) scored on images 0-3, runs 0 and 2 on images 0-1; image 3 of run 1 is
    # an outlier that must not enter the comparison.
    rows = []
    for bg in ("perlin", "mri"):
        for run, n in ((0, 2), (1, 4), (2, 2)):
            for img in range(n):
                ap = 0.9 if (run == 1 and img >= 2) else 0.1 * (run + 1)
                rows.append({"background": bg, "run": run, "selected": run == 1, "model": "trained",
                             "method": "gradient", "image": img, "ap": ap})
    write(tmp_path, "localization_scores", pd.DataFrame(rows))
    text = BLOCKS["run_spread_table"](Tables(tmp_path))
    assert "| Gradient | 0.100 | 0.200 | 0.300 | 0.200 | 0.100 | 0.200 | 0.300 | 0.200 |" in text


def test_tomsett_claims_by_output_sets_the_two_outputs_side_by_side(tmp_path):
    """On tables whose logit-margin rows repeat the probability's with AOPC_MoRF negated,
    the probability column is the ledger's and the MoRF-LeRF rank correlation claim flips
    its sign; tables with one output are refused with the reason."""
    import shutil

    import pandas as pd

    from salbench import paths, report
    from salbench import tables as specs

    folder = tmp_path / "tables"
    shutil.copytree(paths.repo_root() / "tables", folder)
    with pytest.raises(report.ReportError, match="logit margin"):
        report.BLOCKS["tomsett_claims_by_output"](report.Tables(folder))
    for name in ("fidelity_scores", "fidelity_random_baseline", "tomsett_alpha", "tomsett_intermethod",
                 "tomsett_consistency"):
        df = specs.read_table(folder / f"{name}.csv")
        margin = df.assign(output="logit_margin")
        for col in [c for c in df.columns if c.startswith("aopc_morf")]:
            margin[col] = -margin[col]
        pd.concat([df, margin], ignore_index=True).to_csv(folder / f"{name}.csv", index=False)
    text = report.BLOCKS["tomsett_claims_by_output"](report.Tables(folder))
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()[2:]}
    assert len(rows) == 16
    gxi = rows["With mean perturbation, gradient x input has the highest AOPC_MoRF"]
    assert gxi.split(" | ")[1] == "4: does not hold"  # the ledger's statistic on the probability
    # Negating MoRF negates every per-background Kendall tau between MoRF and LeRF: the
    # smallest tau (the statistic) becomes minus the largest.
    reversed_ = rows["The MoRF and LeRF rankings are roughly reversed (low internal consistency)"].split(" | ")
    assert reversed_[1] == "-0.1195: does not hold" and reversed_[2] != reversed_[1]
    assert float(reversed_[2].split(":")[0]) < 0
