"""User-caused errors of the command line end in one line `error: ...` and exit code 2,
leave nothing behind; `data export` generates only the samples it writes."""

import errno
import os

import numpy as np
import pytest

from salbench import cli, paths, runner
from salbench.config import load_profile
from salbench.data import store

EXPORT = ["data", "export", "--profile", "smoke", "--background", "mri", "--split", "holdout"]


def _fails(argv, capsys) -> str:
    """Run main(argv); assert exit code 2 and a single `error:` line; return that line."""
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    line, sep, log = lines[0].partition(" (traceback: ")
    if sep:  # the traceback went to a log, named at the end of the line
        assert (paths.repo_root() / log.rstrip(")")).is_file()
    return line


def _leftovers(*folders):
    return [p for f in folders if f.exists() for p in f.rglob("*") if ".tmp" in p.name]


def test_export_generates_only_its_range_and_equals_a_full_generation(tmp_cache, tmp_path, capsys):
    out = tmp_path / "exp.npz"
    assert cli.main([*EXPORT, "--start", "5", "--count", "7", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert not tmp_cache.exists() or not any(tmp_cache.rglob("*.h5"))  # no data set was built
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["exp.npz"]
    folder = store.ensure_dataset(load_profile("smoke"), progress=False)
    with np.load(out) as z, store.SplitReader(folder, "holdout") as r:
        sl = slice(5, 12)
        assert z["x"].tobytes() == r.x("mri", sl).tobytes() and z["x"].shape == (7, 140, 192, 1)
        assert np.array_equal(z["y"], r.y(sl)) and z["y"].tolist() == [1, 0, 1, 0, 1, 0, 1]
        assert np.array_equal(z["gt"], r.gt(sl)) and np.array_equal(z["mask"], r.mask(sl))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--count", "0"], "error: count=0: must be in 1..32 (the holdout split has 32 images, from start=0)"),
        (["--count", "-3"], "error: count=-3: must be in 1..32 (the holdout split has 32 images, from start=0)"),
        (["--start", "30", "--count", "5"], "error: count=5: must be in 1..2 (the holdout split has 32 images, from start=30)"),
        (["--start", "32"], "error: start=32: must be in 0..31 (the holdout split has 32 images)"),
        (["--start", "-1"], "error: start=-1: must be in 0..31 (the holdout split has 32 images)"),
    ],
)
def test_export_bad_ranges(tmp_cache, tmp_path, capsys, args, message):
    out = tmp_path / "exp.npz"
    assert _fails([*EXPORT, *args, "--out", str(out)], capsys) == message
    assert not out.exists() and not tmp_cache.exists()


def test_export_to_a_folder(tmp_cache, tmp_path, capsys):
    folder = tmp_path / "exports"
    folder.mkdir()
    line = _fails([*EXPORT, "--count", "2", "--out", str(folder)], capsys)
    assert line == f"error: out={folder}: is a folder; give a file path such as {folder / 'export.npz'}"
    assert list(folder.iterdir()) == [] and not _leftovers(tmp_path)


def test_export_below_a_file(tmp_cache, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = blocker / "exp.npz"
    line = _fails([*EXPORT, "--count", "2", "--out", str(out)], capsys)
    assert line.startswith(f"error: out={out}: cannot write there (")
    assert not _leftovers(tmp_path) and blocker.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_export_to_a_read_only_folder(tmp_cache, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        line = _fails([*EXPORT, "--count", "2", "--out", str(ro / "exp.npz")], capsys)
        assert line == f"error: out={ro / 'exp.npz'}: cannot write there (Permission denied)"
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_a_failing_write_leaves_no_temporary(tmp_cache, tmp_path, capsys, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.np, "savez_compressed", full_disk)
    out = tmp_path / "exp.npz"
    line = _fails([*EXPORT, "--count", "2", "--out", str(out)], capsys)
    assert line == f"error: out={out}: cannot write there (No space left on device)"
    assert not out.exists() and not _leftovers(tmp_path)


def test_reproduce_rejects_profile_as_a_notebook_parameter(capsys):
    line = _fails(["reproduce", "--profile", "smoke", "-p", "profile=quick"], capsys)
    assert line == ("error: -p profile='quick': choose the profile with --profile NAME or --config FILE.yaml "
                    "(and --set section.key=value), not -p")


def test_bad_yaml_config_is_one_line_with_position(tmp_path, capsys):
    f = tmp_path / "mine.yaml"
    f.write_text("seed: 3\ndata:\n  n_train: 8\n n_val: 4\n")
    for argv in (["reproduce", "--config", str(f)], ["data", "generate", "--config", str(f)]):
        line = _fails(argv, capsys)
        assert line.startswith(f"error: {f}:4:2: invalid YAML: "), line


@pytest.mark.parametrize(
    "argv, message",
    [
        (["reproduce", "--set", "data.n_trian=4"], "error: unknown key data.n_trian (value 4); valid keys of data: "),
        (["data", "generate", "--profile", "smoke", "--set", "train.lr=1"], "error: override train.lr=1: unknown section 'train'"),
        (["data", "generate"], "error: no profile given: use --profile"),
        (["data", "generate", "--config", "/no/such/p.yaml"], "error: /no/such/p.yaml: no such profile file"),
        (["data", "generate", "--profile", "smoke", "--set", "data.mri_dir=/no/such/dir"],
         "error: data.mri_dir='/no/such/dir': not a folder of NIfTI volumes"),
    ],
)
def test_bad_overrides_are_one_line(tmp_cache, capsys, argv, message):
    assert _fails(argv, capsys).startswith(message)
    assert not tmp_cache.exists()


def test_data_command_uses_the_resolved_profile(tmp_cache, tmp_path, capsys, monkeypatch):
    seen = []
    monkeypatch.setattr(store, "ensure_dataset", lambda profile: seen.append(profile) or tmp_path)
    f = tmp_path / "layer.yaml"
    f.write_text("data:\n  n_train: 20\n  n_val: 10\n")
    assert cli.main(["data", "generate", "--profile", "smoke", "--config", str(f), "--set", "data.n_train=40"]) == 0
    (p,) = seen
    assert (p.data.n_train, p.data.n_val) == (40, 10)
    assert p.overrides == ("data.n_train=40", "data.n_val=10") and p.name.startswith("smoke+")


def test_reproduce_hands_the_notebooks_the_resolved_profile(tmp_path, monkeypatch):
    monkeypatch.setattr(runner.paths, "build_dir", lambda: tmp_path / "build")  # not the repository's build/
    seen = []
    monkeypatch.setattr(cli, "reproduce", lambda profile, *a, **k: seen.append(profile))
    assert cli.main(["reproduce", "--profile", "smoke", "--set", "classifier.max_epochs=2"]) == 0
    assert cli.main(["reproduce"]) == 0  # quick by default
    overridden, quick = seen
    assert quick == load_profile("quick") and cli.profile_parameter(quick) == "quick"
    path = cli.profile_parameter(overridden)
    assert path == str(tmp_path / "build" / "profiles" / f"{overridden.name}.yaml")
    assert load_profile(path) == overridden and overridden.classifier.max_epochs == 2
