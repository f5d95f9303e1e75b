"""Notebook conventions and every profile accepted by every notebook (papermill --prepare-only)."""

import json
import os
import re
import shutil
import subprocess
import sys

import nbformat
import papermill as pm
import pytest

from salbench import paths, runner
from salbench.config import PROFILES, load_profile

NOTEBOOKS = runner.notebooks()


def test_notebooks_exist_in_order():
    names = [p.stem for p in NOTEBOOKS]
    assert names[:2] == ["01_data", "02_train"]
    assert names == sorted(names)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_conventions(nb):
    cells = nbformat.read(nb, as_version=4).cells
    assert cells[0].cell_type == "markdown"
    assert "parameters" in cells[1].metadata.get("tags", [])
    params = pm.inspect_notebook(str(nb))
    assert params["profile"]["default"] == '"smoke"'
    for c in cells:
        if c.cell_type == "code":
            assert not re.search(r"^\s*(def|class) ", c.source, re.M), "no def/class in notebooks"
            assert not any(o.get("output_type") == "error" for o in c.get("outputs", []))


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_profile_is_accepted(nb, profile, tmp_path):
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(nb), str(out), parameters={"profile": profile}, prepare_only=True)
    injected = [c for c in nbformat.read(out, 4).cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and f'profile = "{profile}"' in injected[0].source
    load_profile(profile)


def test_runner_rejects_undeclared_parameter():
    with pytest.raises(SystemExit, match="not declared"):
        runner.reproduce("smoke", only=["01_data"], params={"learning_rate": 0.1})


def test_runner_rejects_unknown_notebook():
    with pytest.raises(SystemExit, match="no such notebook"):
        runner.reproduce("smoke", only=["99_nothing"])


def test_cli_rejects_bad_profile():
    r = subprocess.run([sys.executable, "-m", "salbench", "reproduce", "--profile", "huge"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "invalid choice: 'huge'" in r.stderr


def test_cli_export_error_is_clear(tmp_cache, tmp_path):
    r = subprocess.run([sys.executable, "-m", "salbench", "data", "export", "--profile", "smoke",
                        "--background", "mri", "--split", "val", "--start", "10", "--count", "50",
                        "--out", str(tmp_path / "x.npz")], capture_output=True, text=True)
    assert r.returncode == 2 and "the val split has 16 images" in r.stderr


@pytest.mark.slow
def test_runner_executes_smoke_data_notebook_outside_results(tmp_cache):
    executed = runner.reproduce("smoke", only=["01"], progress=False)
    assert executed[0].name == "01_data__smoke.ipynb" and executed[0].exists()
    prov = json.loads((paths.build_dir() / "outputs" / "smoke" / "figures" / "provenance.json").read_text())
    assert prov["data_examples.png"]["profile"] == "smoke"
    # Smoke runs never write the published results.
    published = paths.repo_root() / "figures" / "provenance.json"
    if published.exists():
        assert all(v["profile"] != "smoke" for v in json.loads(published.read_text()).values())



# --------------------------------------------------------------------------- runner on throwaway notebooks

NOISE = ("Unable to register cuDNN factory: Attempting to register factory for plugin cuDNN "
         "when one has already been registered")


def _write_nb(path, *code):
    import nbformat.v4 as v4

    cells = [v4.new_markdown_cell("# throwaway"), v4.new_code_cell('profile = "smoke"', metadata={"tags": ["parameters"]})]
    cells += [v4.new_code_cell(c) for c in code]
    nb = v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                "language": "python"}})
    nbformat.write(nb, path)


OK_CELLS = (
    "import os, sys\n"
    f"os.write(2, b'E0000 cuda_dnn.cc:8310] {NOISE}\\n')  # as TensorFlow does from C++\n"
    "print('stderr-marker', file=sys.stderr)\n"
    "print('profile is', profile)",
)
FAIL_CELLS = ("x = 1", "raise ValueError('a first line\\nboom ' + profile)")


@pytest.fixture
def mini_repo(tmp_path, monkeypatch):
    """A repository with its own notebooks/ and build/ (and the real configs)."""
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    shutil.copytree(paths.repo_root() / "configs", root / "configs")
    monkeypatch.setenv("SALBENCH_ROOT", str(root))
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "cache"))
    return root


def _files(root):
    return sorted(str(p.relative_to(root)) for p in (root / "build").rglob("*") if p.is_file())


def test_runner_success_prints_one_line_per_stage_and_keeps_noise_in_log(mini_repo, capfd):
    _write_nb(mini_repo / "notebooks" / "01_ok.ipynb", *OK_CELLS)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = paths.cache_dir() / "data" / f"abc.tmp-{dead.pid}-0123abcd"
    stale.mkdir(parents=True)
    out = runner.reproduce("smoke", progress=True)
    assert out == [mini_repo / "build" / "notebooks" / "01_ok__smoke.ipynb"]
    assert _files(mini_repo) == ["build/logs/01_ok__smoke.log", "build/notebooks/01_ok__smoke.ipynb"]
    assert not stale.exists()
    log = (mini_repo / "build" / "logs" / "01_ok__smoke.log").read_text()
    assert NOISE in log and "stderr-marker" in log and "profile is smoke" in log
    term = capfd.readouterr()
    shown = (term.out + term.err).strip().splitlines()
    assert shown == ["removed 1 unfinished cache folder(s) left by stopped runs",
                     shown[1]], shown
    assert re.fullmatch(r"\[1/1\] 01_ok: done in \d+ s; log: build/logs/01_ok__smoke\.log", shown[1])
    assert "cuDNN" not in term.out + term.err and "without encryption" not in term.out + term.err


def test_failing_notebook_ends_in_one_line_and_keeps_last_good_run(mini_repo, capfd):
    nb = mini_repo / "notebooks" / "01_nb.ipynb"
    _write_nb(nb, *OK_CELLS)
    good = runner.run_notebook(nb, "smoke", {"profile": "smoke"}, progress=False)
    good_log = mini_repo / "build" / "logs" / "01_nb__smoke.log"
    before = (good.read_bytes(), good_log.read_bytes())
    capfd.readouterr()

    _write_nb(nb, *FAIL_CELLS)
    with pytest.raises(runner.NotebookFailed) as info:
        runner.run_notebook(nb, "smoke", {"profile": "smoke"}, progress=False)
    line = str(info.value)
    assert "\n" not in line
    assert line == ("error: 01_nb.ipynb failed at cell 4 (In [4]): ValueError: boom smoke; "
                    "executed copy: build/notebooks/01_nb__smoke.failed.ipynb; log: build/logs/01_nb__smoke.failed.log")
    assert (good.read_bytes(), good_log.read_bytes()) == before  # the last good run is untouched
    failed_log = (mini_repo / "build" / "logs" / "01_nb__smoke.failed.log").read_text()
    assert "ValueError" in failed_log and "boom smoke" in failed_log and "\x1b[" not in failed_log
    assert not [f for f in _files(mini_repo) if ".running" in f or "/." in f]
    term = capfd.readouterr()
    assert "Traceback" not in term.out + term.err and "ValueError" not in term.out + term.err

    _write_nb(nb, *OK_CELLS)  # fixed: the next success removes the failure records
    runner.run_notebook(nb, "smoke", {"profile": "smoke"}, progress=False)
    assert _files(mini_repo) == ["build/logs/01_nb__smoke.log", "build/notebooks/01_nb__smoke.ipynb"]


def test_cli_failing_notebook_is_one_line_without_traceback(mini_repo):
    _write_nb(mini_repo / "notebooks" / "01_fail.ipynb", *FAIL_CELLS)
    r = subprocess.run([sys.executable, "-m", "salbench", "reproduce", "--profile", "smoke", "--no-progress"],
                       capture_output=True, text=True, env={**os.environ, "SALBENCH_ROOT": str(mini_repo)})
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.splitlines() == [
        "error: 01_fail.ipynb failed at cell 4 (In [4]): ValueError: boom smoke; executed copy: "
        "build/notebooks/01_fail__smoke.failed.ipynb; log: build/logs/01_fail__smoke.failed.log"]


def test_dead_kernel_is_one_line_naming_the_cell(mini_repo, capfd):
    nb = mini_repo / "notebooks" / "01_die.ipynb"
    _write_nb(nb, "import os; os._exit(3)")
    with pytest.raises(runner.NotebookFailed) as info:
        runner.run_notebook(nb, "smoke", {"profile": "smoke"}, progress=False)
    assert str(info.value) == ("error: 01_die.ipynb failed at cell 3: DeadKernelError: Kernel died; executed copy: "
                               "build/notebooks/01_die__smoke.failed.ipynb; log: build/logs/01_die__smoke.failed.log")
    assert "Kernel died" in (mini_repo / "build" / "logs" / "01_die__smoke.failed.log").read_text()
    term = capfd.readouterr()
    assert term.out + term.err == ""


def test_interrupted_run_leaves_nothing_under_final_name(mini_repo, monkeypatch, capfd):
    import papermill

    nb = mini_repo / "notebooks" / "01_nb.ipynb"
    _write_nb(nb, *OK_CELLS)

    def interrupted(input_path, output_path, **kwargs):
        shutil.copy(input_path, output_path)  # papermill's autosave of a half-run notebook
        kwargs["stderr_file"].write("epoch 1/5\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    with pytest.raises(runner.NotebookFailed) as info:
        runner.run_notebook(nb, "smoke", {"profile": "smoke"}, progress=False)
    assert info.value.code == 130
    assert _files(mini_repo) == ["build/logs/01_nb__smoke.failed.log", "build/notebooks/01_nb__smoke.failed.ipynb"]
    assert "interrupted" in (mini_repo / "build" / "logs" / "01_nb__smoke.failed.log").read_text()
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "01_nb: interrupted after" in err[0] and "01_nb__smoke.failed.ipynb" in err[0]


def test_status_line_shows_latest_progress_without_noise():
    import io

    buf = io.StringIO()
    status = runner._Status("[1/2] 02_train", enabled=True, stream=buf)
    streams = runner._KernelStreams(io.StringIO(), status)
    status.set_cell(2, 9)
    streams.write(f"E0000 {NOISE}\n")
    status._drawn = 0
    streams.write("classifier run0:  40%|####      | 2/5 [00:10<00:15,  5.0s/epoch]\r")
    last = buf.getvalue().split("\r\x1b[K")[-1]
    assert last.startswith("[1/2] 02_train  cell 3/9  ") and last.endswith("5.0s/epoch]") and "cuDNN" not in buf.getvalue()


# --------------------------------------------------------------------------- committed-notebook hygiene


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_clean(nb):
    """< 1 MB, no stderr (warnings, bars), no absolute paths, no timestamps."""
    assert runner.notebook_problems(nb) == []


def test_clean_notebook_strips_noise_and_keeps_results(tmp_path, monkeypatch):
    import nbformat.v4 as v4

    monkeypatch.setenv("SALBENCH_ROOT", str(tmp_path))
    png = {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure size 640x480 with 1 Axes>"}
    timing = {"iopub.execute_input": "2026-11-25T13:26:17.530191Z", "shell.execute_reply": "2026-11-25T13:26:17.5Z"}
    cell = v4.new_code_cell("run()", metadata={"execution": timing, "papermill": {"start_time": "2026-11-25T13:26:17"}})
    cell.outputs = [
        v4.new_output("stream", name="stderr", text="/root/.venv/lib/python3.11/site-packages/keras/x.py:1: UserWarning\n"),
        v4.new_output("stream", name="stdout", text=f"\r  0%|          | 0/5\rwrote {tmp_path}/build/cache/data/abc\nshape (4, 2)\n"),
        v4.new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "0%"}),
        v4.new_output("display_data", data=png),
        v4.new_output("execute_result", data={"text/plain": "'/home/someone/mri/t1.nii.gz'"}, execution_count=2),
    ]
    injected = v4.new_code_cell('profile = "smoke"', metadata={"tags": ["injected-parameters"]})
    nb = v4.new_notebook(cells=[cell, injected], metadata={"papermill": {"input_path": "/work/x.ipynb"}})
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    assert len(runner.notebook_problems(path)) == 4  # stderr, path, timestamp, metadata
    runner.clean_notebook(path)
    assert runner.notebook_problems(path) == []
    cleaned = nbformat.read(path, 4)
    assert len(cleaned.cells) == 1
    outs = cleaned.cells[0].outputs
    assert outs[0].text == "wrote build/cache/data/abc\nshape (4, 2)\n"
    assert outs[1].data == png
    assert outs[2].data["text/plain"] == "'~/mri/t1.nii.gz'"
    assert len(outs) == 3


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_the_running_notebook(mini_repo):
    """A terminal's Ctrl-C reaches only the runner (the kernel has its own session): it must
    interrupt the running cell (here: data generation in worker processes) and stop, not
    let the notebook run on to the end and report it done."""
    import signal
    import time

    marker = mini_repo / "cell-started"
    _write_nb(mini_repo / "notebooks" / "01_slow.ipynb",
              "from salbench.config import load_profile\nfrom salbench.data import store\nimport pathlib\n"
              "store.PARALLEL_MIN_IMAGES = 1  # worker processes, as 01_data on the quick profile\n"
              f"pathlib.Path({str(marker)!r}).touch()\n"
              "store.ensure_dataset(load_profile('smoke', data__n_train=60000, data__chunk_size=64), workers=2)",
              "print('ran on')")
    proc = subprocess.Popen([sys.executable, "-m", "salbench", "reproduce", "--profile", "smoke", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "SALBENCH_ROOT": str(mini_repo)})
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert marker.exists(), "the slow cell never started"
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert time.time() - sent < 30, "Ctrl-C did not stop the notebook"
    assert proc.returncode == 130, (proc.returncode, err)
    assert "01_slow: interrupted after" in err and "ran on" not in out + err
    assert _files(mini_repo) == ["build/logs/01_slow__smoke.failed.log", "build/notebooks/01_slow__smoke.failed.ipynb"]
    assert not list((mini_repo.parent / "cache").glob("data/*/meta.json"))  # no data set that reads as complete
