"""`salbench compare`: row-keyed comparison of a run's tables with a reference."""

import numpy as np
import pandas as pd
import pytest

from salbench import cli, compare


def _accuracy():
    return pd.DataFrame({
        "background": ["perlin", "mri"], "architecture": ["vgg", "vgg"], "role": ["classifier"] * 2,
        "run": [0, 0], "holdout_accuracy": [0.998, 0.95], "holdout_dice": [np.nan, np.nan],
        "seconds_per_epoch": [100.0, 90.0], "selected": [True, True],
    })


def test_identical_tables_are_same():
    d = compare.compare_table("accuracy", _accuracy(), _accuracy())
    assert d.ok and d.lines() == ["accuracy: same"]


def test_numeric_difference_is_measured_and_held_to_the_tolerance():
    new = _accuracy()
    new.loc[1, "holdout_accuracy"] = 0.96
    d = compare.compare_table("accuracy", new, _accuracy())
    assert not d.ok
    biggest, n = d.numeric["holdout_accuracy"]
    assert biggest == pytest.approx(0.01) and n == 1
    assert compare.compare_table("accuracy", new, _accuracy(), tolerance=0.02).ok


def test_nan_on_one_side_only_differs():
    new = _accuracy()
    new.loc[0, "holdout_dice"] = 0.9
    d = compare.compare_table("accuracy", new, _accuracy(), tolerance=1.0)
    assert d.numeric["holdout_dice"] == (np.inf, 1) and not d.ok


def test_timings_are_not_compared_but_flags_and_rows_are():
    new = _accuracy()
    new["seconds_per_epoch"] *= 3
    assert compare.compare_table("accuracy", new, _accuracy()).ok
    new.loc[0, "selected"] = False
    assert compare.compare_table("accuracy", new, _accuracy()).other["selected"] == 1
    extra = pd.concat([_accuracy(), _accuracy().assign(run=1)], ignore_index=True)
    d = compare.compare_table("accuracy", extra, _accuracy())
    assert (d.only_new, d.only_reference, d.ok) == (2, 0, False)


def test_column_on_one_side_only_differs():
    d = compare.compare_table("accuracy", _accuracy().assign(extra=1), _accuracy())
    assert not d.ok and any("extra" in line for line in d.lines())


@pytest.mark.parametrize("name, new, tol, fragment", [
    ("nosuch", _accuracy(), 0.0, "table 'nosuch'"),
    ("accuracy", _accuracy().drop(columns="run"), 0.0, r"key column\(s\) \['run'\] missing"),
    ("accuracy", pd.concat([_accuracy()] * 2), 0.0, "duplicate rows"),
    ("accuracy", _accuracy(), -1.0, "tolerance=-1.0"),
])
def test_bad_input_is_named(name, new, tol, fragment):
    with pytest.raises(ValueError, match=fragment):
        compare.compare_table(name, new, _accuracy(), tol)


def test_cli_compares_folders_and_exits_nonzero_on_difference(tmp_path, capsys):
    run, ref = tmp_path / "run", tmp_path / "ref"
    run.mkdir(), ref.mkdir()
    _accuracy().to_csv(ref / "accuracy.csv", index=False)
    _accuracy().to_csv(run / "accuracy.csv", index=False)
    assert cli.main(["compare", "--reference", str(ref), "--tables", str(run)]) == 0
    changed = _accuracy()
    changed.loc[0, "holdout_accuracy"] = 0.5
    changed.to_csv(run / "accuracy.csv", index=False)
    assert cli.main(["compare", "--reference", str(ref), "--tables", str(run)]) == 1
    assert "holdout_accuracy: max |difference| 0.498" in capsys.readouterr().out
    (ref / "localization_scores.csv").write_text("background,model,method,image,auprc\nmri,trained,gradient,1,0.5\n")
    diffs = compare.compare_tables(str(ref), run)
    assert [d.missing for d in diffs if d.name == "localization_scores"] == ["this run"]


def test_table_without_key_columns_is_reported_not_fatal(tmp_path):
    run, ref = tmp_path / "run", tmp_path / "ref"
    run.mkdir(), ref.mkdir()
    _accuracy().to_csv(ref / "accuracy.csv", index=False)
    _accuracy().to_csv(run / "accuracy.csv", index=False)
    _accuracy().drop(columns="run").to_csv(ref / "localization_scores.csv", index=False)
    _accuracy().to_csv(run / "localization_scores.csv", index=False)
    diffs = {d.name: d for d in compare.compare_tables(str(ref), run)}
    assert diffs["accuracy"].ok
    assert not diffs["localization_scores"].ok
    assert "cannot compare" in diffs["localization_scores"].lines()[0]


def test_negative_tolerance_is_refused_before_reading(tmp_path):
    with pytest.raises(ValueError, match="tolerance=-0.1"):
        compare.compare_tables(str(tmp_path), tmp_path, tolerance=-0.1)


def test_bad_reference_is_named(tmp_path):
    _accuracy().to_csv(tmp_path / "accuracy.csv", index=False)
    with pytest.raises(ValueError, match="reference 'no-such-revision-xyz'"):
        compare.compare_tables("no-such-revision-xyz", tmp_path)


# --------------------------------------------------------------------------- compare --claims

def _committed_copy(folder):
    """The committed tables the conclusions read, in `folder`."""
    from salbench import paths

    folder.mkdir()
    for name in ("accuracy", "localization_summary", "localization_mixed_models", "localization_randomization"):
        (folder / f"{name}.csv").write_bytes((paths.repo_root() / "tables" / f"{name}.csv").read_bytes())
    return folder


def _edit(folder, name, fn):
    path = folder / f"{name}.csv"
    fn(pd.read_csv(path)).to_csv(path, index=False)


def _shrink(df, columns):
    """Every number in `columns` times 0.99: different numbers, same order and signs."""
    out = df.copy()
    for c in columns:
        out[c] = out[c] * 0.99
    return out


def _numerically_different(tmp_path):
    ref, run = _committed_copy(tmp_path / "ref"), _committed_copy(tmp_path / "run")
    _edit(run, "localization_summary", lambda d: _shrink(d, [c for c in d if c.startswith(("mean_", "ci_"))]))
    _edit(run, "localization_randomization", lambda d: _shrink(d, ["mean", "sd", "ci_lo", "ci_hi"]))
    _edit(run, "localization_mixed_models", lambda d: _shrink(d, ["estimate", "se", "ci_lo", "ci_hi"]))
    _edit(run, "accuracy", lambda d: _shrink(d, ["holdout_accuracy"]))
    return ref, run


def test_compare_claims_numeric_differences_only_reproduce(tmp_path, capsys):
    ref, run = _numerically_different(tmp_path)
    assert cli.main(["compare", "--numeric", "--reference", str(ref), "--tables", str(run)]) == 1
    capsys.readouterr()
    assert cli.main(["compare", "--claims", "--reference", str(ref), "--tables", str(run)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    res = compare.compare_conclusions(str(ref), run)
    n = len(res.claims) + len(res.verdicts) + len(res.rankings)
    assert len(res.claims) == 17 and len(res.verdicts) == 3 * 136 and len(res.rankings) == 8  # three runs
    assert last.startswith(f"{n} of {n} conclusions reproduce") and last.endswith("differing: none")


def test_compare_claims_names_one_flipped_verdict_and_a_flipped_claim(tmp_path, capsys):
    ref, run = _numerically_different(tmp_path)

    def flip(d):
        hit = ((d.background == "perlin") & (d.metric == "auprc") & (d.method == "gradient") & (d.baseline == "avg_mask")
               & (d.run == 1))
        assert d.loc[hit, "verdict"].tolist() == ["pass"]
        return d.assign(verdict=d["verdict"].where(~hit, "did not pass"))

    _edit(run, "localization_mixed_models", flip)
    assert cli.main(["compare", "--claims", "--reference", str(ref), "--tables", str(run)]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.endswith("differing: verdict perlin auprc gradient avg_mask run 1 (pass -> did not pass)")
    assert "claims 17/17" in last and "verdicts 407/408" in last

    forced = {}

    def force_patternnet(d):  # PatternNet's Perlin mAP to one side of its MRI mAP in every run
        pn = (d.model == "trained") & (d.method == "patternnet")
        above = [float(d.loc[pn & (d.run == r) & (d.background == "perlin"), "mean_ap"].iloc[0])
                 > float(d.loc[pn & (d.run == r) & (d.background == "mri"), "mean_ap"].iloc[0]) for r in d.run.unique()]
        forced["above"] = not all(above)  # away from "holds in every run" if it held there, else towards it
        for run in d.run.unique():
            mri = float(d.loc[pn & (d.run == run) & (d.background == "mri"), "mean_ap"].iloc[0])
            d.loc[pn & (d.run == run) & (d.background == "perlin"), "mean_ap"] = mri + (0.1 if forced["above"] else -0.1)
        return d

    _edit(run, "localization_summary", force_patternnet)
    res = compare.compare_conclusions(str(ref), run)
    assert not res.ok
    row = res.claims.set_index("claim_id").loc["budding_patternnet_perlin_gt_mri"]
    now = "holds in every run" if forced["above"] else "holds in no run"
    assert row.verdict_a == now and row.verdict_b != now
    assert f"claim budding_patternnet_perlin_gt_mri ({row.verdict_b} -> {now})" in res.differing()


def test_compare_claims_names_a_missing_tables_folder_as_such(tmp_path):
    with pytest.raises(ValueError, match="tables folder .*nope.* does not exist"):
        compare.compare_conclusions("HEAD", tmp_path / "nope")


def test_verdicts_of_a_run_only_one_side_trained_are_set_aside_not_differing():
    from salbench import compare

    base = {"background": "perlin", "metric": "ap", "method": "gradient", "baseline": "avg_mask"}
    ref = pd.DataFrame([{**base, "run": r, "verdict": "pass"} for r in (0, 1)])
    new = pd.DataFrame([{**base, "run": r, "verdict": v} for r, v in ((0, "pass"), (1, "uncertain"), (2, "pass"))])
    v = compare.compare_verdicts(new, ref)
    assert v.set_index("run")["compared"].to_dict() == {"0": True, "1": True, "2": False}
    c = compare.Conclusions(pd.DataFrame({"reproduces": [True]}), v,
                            pd.DataFrame({"reproduces": [True]}))
    assert c.set_aside == 1 and not c.ok
    assert "verdicts 1/2" in c.summary() and "1 verdicts of classifier runs only one side trained" in c.summary()
    assert "run 2" not in c.summary()  # set aside, not named as differing
    # A run one side lacks altogether is set aside; a verdict missing for a run both trained differs.
    v2 = compare.compare_verdicts(new[new.run != 1], ref)
    assert not v2[v2.run == "1"].compared.any()
    ref3 = pd.concat([ref, ref.assign(method="xrai")], ignore_index=True)
    v3 = compare.compare_verdicts(new, ref3)
    lost = v3[(v3.method == "xrai") & (v3.run == "0")]
    assert lost.compared.all() and not lost.reproduces.any()
