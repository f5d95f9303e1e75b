"""Running the notebooks with papermill, and keeping committed notebooks clean.

`reproduce(profile)` runs the selected notebooks in order. For each it prints one line
(the stage, its time and its log) and, on a terminal, one live status line (cell, time,
the kernel's latest progress-bar text). Everything the kernel writes, TensorFlow's
start-up noise included, goes to ``build/logs/<name>__<profile>.log`` only.

Files of a run of notebook <name> with profile <p>:

- ``build/notebooks/<name>__<p>.ipynb`` and ``build/logs/<name>__<p>.log``: the last
  run that reached the end; written under these names only once it has.
- ``<name>__<p>.running.ipynb`` / ``.running.log``: the run in progress.
- ``<name>__<p>.failed.ipynb`` / ``.failed.log``: the last run that failed or was
  interrupted (the log ends with the error's traceback); removed by the next success.

A failing notebook ends in one line naming the notebook, the cell, the error's last
line, the executed copy to open and the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

from salbench import atomic, cache, config, paths
from salbench import progress as progress_bars
from salbench.config import PROFILES, Profile, load_profile

# Kernel output that never reaches the terminal (it stays in the log): TensorFlow's
# CUDA plugin registration and start-up notices, and ipykernel's TCP notice.
TERMINAL_NOISE = re.compile(
    r"Unable to register cu(DNN|FFT|BLAS) factory|Kernel is running over TCP without encryption"
    r"|TF-TRT Warning|This TensorFlow binary is optimized|oneDNN custom operations"
    r"|cuda_(dnn|fft|blas)\.cc|computation_placer\.cc|\[IPKernelApp\]"
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Seconds between redraws of the live status line.
STATUS_INTERVAL_S = 0.25


class NotebookFailed(SystemExit):
    """A notebook run failed; str() is the one-line report (exit status 1 if uncaught)."""


def notebooks() -> list[Path]:
    return sorted((paths.repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def select_notebooks(only: list[str] | None) -> list[Path]:
    found = notebooks()
    if not only:
        return found
    chosen = []
    names = [p.stem for p in found]
    for want in only:
        match = [p for p in found if p.stem == want or p.stem.startswith(want + "_") or p.stem[:2] == want]
        if not match:
            raise SystemExit(f"error: --only {want!r}: no such notebook; valid: {names}")
        chosen += [m for m in match if m not in chosen]
    return sorted(chosen)


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(paths.repo_root()))
    except ValueError:
        return str(path)


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class _Status:
    """The live status line of the running notebook (terminal only)."""

    def __init__(self, label: str, enabled: bool, stream=None):
        self.label, self.enabled = label, enabled
        self.stream = stream or sys.stdout
        self.start = time.time()
        self.cell = ""
        self.index: int | None = None  # of the running cell in the executed copy
        self.detail = ""
        self._drawn = 0.0
        self._shown = False

    def set_cell(self, index: int, total: int) -> None:
        self.index = index
        self.cell = f"cell {index + 1}/{total}"
        self.detail = ""  # the previous cell's progress is over
        self.draw(force=True)

    def set_detail(self, text: str) -> None:
        self.detail = text
        self.draw()

    def draw(self, force: bool = False) -> None:
        now = time.time()
        if not self.enabled or (not force and now - self._drawn < STATUS_INTERVAL_S):
            return
        self._drawn = now
        width = shutil.get_terminal_size((100, 20)).columns - 1
        line = f"{self.label}  {self.cell}  {_duration(now - self.start)}  {self.detail}"
        self.stream.write("\r\x1b[K" + line[:width])
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


class _KernelStreams:
    """stdout_file/stderr_file for papermill: everything to the log; the latest
    progress text that is not noise to the status line."""

    def __init__(self, log, status: _Status):
        self.log, self.status = log, status

    def write(self, text: str) -> int:
        self.log.write(text)
        self.log.flush()
        pieces = [p.strip() for p in re.split(r"[\r\n]", _ANSI.sub("", text))]
        pieces = [p for p in pieces if p and not TERMINAL_NOISE.search(p)]
        if pieces:
            self.status.set_detail(pieces[-1])
        return len(text)

    def flush(self) -> None:
        self.log.flush()


def _take_ctrl_c(km, interrupts: list) -> None:
    """Ctrl-C while a notebook runs: the first interrupts its kernel (a KeyboardInterrupt in
    the running cell, which stops the notebook), a second kills the kernel. The kernel
    runs in its own session, so a terminal's Ctrl-C reaches only this process, and
    nbclient's own handler merely scheduled a shutdown that waited for the notebook to
    finish: the run went on. Each Ctrl-C is appended to `interrupts`."""
    loop = asyncio.get_running_loop()

    def on_sigint():
        interrupts.append(time.time())
        if len(interrupts) == 1:
            print("\ninterrupting the notebook's kernel (Ctrl-C again to kill it) ...", file=sys.stderr, flush=True)
            asyncio.ensure_future(km.interrupt_kernel())
        else:
            asyncio.ensure_future(km.shutdown_kernel(now=True))

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError):  # Windows; not the main thread
        pass


def _engine_class():
    """A papermill engine that reports cell starts to a _Status, starts the kernel with its
    own stdout/stderr sent to the log (so its start-up noise stays there), and makes
    Ctrl-C stop the notebook (`_take_ctrl_c`)."""
    from jupyter_client.manager import AsyncKernelManager
    from papermill.engines import NBClientEngine

    class SalbenchEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, salbench_status=None, salbench_log=None,
                                     salbench_interrupts=None, **kwargs):
            if salbench_status is not None:
                start = nb_man.cell_start

                def cell_start(cell, cell_index=None, **kw):
                    salbench_status.set_cell(cell_index, len(nb_man.nb.cells))
                    return start(cell, cell_index, **kw)

                nb_man.cell_start = cell_start

            class SalbenchKernelManager(AsyncKernelManager):
                async def _async_launch_kernel(self, kernel_cmd, **kw):
                    if salbench_log is not None:
                        kw["stdout"] = kw["stderr"] = salbench_log
                    launched = await super()._async_launch_kernel(kernel_cmd, **kw)
                    # After nbclient installed its own SIGINT handler, which this replaces.
                    _take_ctrl_c(self, [] if salbench_interrupts is None else salbench_interrupts)
                    return launched

            kwargs["kernel_manager_class"] = SalbenchKernelManager
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    return SalbenchEngine


def _failure_line(err, nb: Path, executed: Path, log: Path, current_cell: int | None = None) -> str:
    """One line for a PapermillExecutionError (or any other exception, e.g. the kernel
    died, raised while cell index `current_cell` of the executed copy ran)."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(err, PapermillExecutionError):
        where = f"at cell {_source_cell_number(executed, err.cell_index)} (In [{err.exec_count}])"
        lines = [ln for ln in str(err.evalue).splitlines() if ln.strip()]
        what = f"{err.ename}: {lines[-1]}" if lines else err.ename
    else:
        where = (f"at cell {_source_cell_number(executed, current_cell)}" if current_cell is not None
                 else "before its first cell")
        what = (f"{type(err).__name__}: {err}".splitlines() or [type(err).__name__])[0]
    what = what if len(what) <= 300 else what[:297] + "..."
    opened = f"; executed copy: {_rel(executed)}" if executed.exists() else ""
    return f"error: {nb.name} failed {where}: {what}{opened}; log: {_rel(log)}"


def _source_cell_number(executed: Path, index: int) -> int:
    """1-based position in the source notebook of cell `index` of the executed copy
    (which holds papermill's injected-parameters cell)."""
    try:
        cells = json.loads(executed.read_text())["cells"]
        injected = sum("injected-parameters" in c.get("metadata", {}).get("tags", []) for c in cells[:index])
    except (OSError, ValueError, KeyError):
        injected = 0
    return index + 1 - injected


def run_notebook(nb: Path, profile: str, parameters: dict, label: str = "", progress: bool = True) -> Path:
    """Execute `nb` with papermill into build/notebooks/<name>__<profile>.ipynb (see the
    module docstring for the files); NotebookFailed with a one-line report if it fails."""
    import papermill as pm
    from papermill.engines import papermill_engines

    papermill_engines.register("salbench", _engine_class())
    out_dir, log_dir = paths.build_dir() / "notebooks", paths.build_dir() / "logs"
    out_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{nb.stem}__{profile}"
    out, running, failed = (out_dir / f"{stem}{s}.ipynb" for s in ("", ".running", ".failed"))
    log, running_log, failed_log = (log_dir / f"{stem}{s}.log" for s in ("", ".running", ".failed"))
    label = label or nb.stem
    status = _Status(f"{label} {nb.stem}", enabled=progress and sys.stdout.isatty())
    start = time.time()
    error = None
    interrupts: list[float] = []
    # papermill's and nbclient's own messages (e.g. "Kernel died") go to the log too.
    pm_log = logging.getLogger("papermill")
    handler = logging.StreamHandler()
    saved = pm_log.propagate
    running_log.unlink(missing_ok=True)
    # Append mode: the kernel writes to the same file through its own descriptor.
    with open(running_log, "a", buffering=1) as fh:
        handler.setStream(fh)
        pm_log.addHandler(handler)
        pm_log.propagate = False
        try:
            pm.execute_notebook(
                str(nb), str(running), parameters=parameters, progress_bar=False, log_output=False,
                stdout_file=_KernelStreams(fh, status), stderr_file=_KernelStreams(fh, status),
                cwd=str(nb.parent), kernel_name="python3", engine_name="salbench",
                salbench_status=status, salbench_log=fh, salbench_interrupts=interrupts,
            )
            if interrupts:  # Ctrl-C came as the last cell ended: still an interrupted run
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            error = "interrupted"
            fh.write("\nsalbench: interrupted (Ctrl-C)\n")
        except Exception as err:  # noqa: BLE001 -- every failure ends in one line; the log keeps the traceback
            text = getattr(err, "traceback", None)
            fh.write("\n" + _ANSI.sub("", "\n".join(text) if text else traceback.format_exc()) + "\n")
            # The KeyboardInterrupt of an interrupted kernel, or the kernel a second Ctrl-C killed.
            error = "interrupted" if interrupts else err
            if interrupts:
                fh.write("salbench: interrupted (Ctrl-C)\n")
        finally:
            pm_log.removeHandler(handler)
            pm_log.propagate = saved
            status.clear()
    seconds = time.time() - start
    if error is None:
        os.replace(running, out)  # only a notebook that ran to the end gets the final name
        os.replace(running_log, log)
        for stale in (failed, failed_log):
            stale.unlink(missing_ok=True)
        print(f"{label} {nb.stem}: done in {_duration(seconds)}; log: {_rel(log)}", flush=True)
        return out
    if running.exists():
        os.replace(running, failed)
    os.replace(running_log, failed_log)
    if error == "interrupted":
        kept = f"; partial copy: {_rel(failed)}" if failed.exists() else ""
        print(f"{label} {nb.stem}: interrupted after {_duration(seconds)}{kept}; log: {_rel(failed_log)}",
              file=sys.stderr, flush=True)
        raise NotebookFailed(130)
    raise NotebookFailed(_failure_line(error, nb, failed, failed_log, status.index))


def profile_parameter(profile: Profile) -> str:
    """What the notebooks' `profile` parameter gets: the name of a built-in profile used
    as written, else the path of the resolved profile dumped to build/profiles/."""
    if profile.name in PROFILES and not profile.overrides:
        return profile.name
    return str(config.dump_profile(profile, paths.build_dir() / "profiles" / f"{profile.name}.yaml"))


def reproduce(profile: str | Profile, only: list[str] | None = None, params: dict | None = None,
              progress: bool = True) -> list[Path]:
    """Run the notebooks in order with papermill; return the executed copies."""
    import papermill as pm

    resolved = profile if isinstance(profile, Profile) else load_profile(profile)  # fail early on a bad profile
    profile = resolved.name
    profile_arg = profile_parameter(resolved)
    params = dict(params or {})
    selected = select_notebooks(only)
    declared = {nb: pm.inspect_notebook(str(nb)) for nb in selected}
    # Check every notebook's parameters before running any of them.
    for nb in selected:
        if "profile" not in declared[nb]:
            raise SystemExit(f"error: {nb.name}: its parameters cell does not declare 'profile'")
    unknown = {k for k in params if not any(k in declared[nb] for nb in selected)}
    if unknown:
        raise SystemExit(f"error: parameter(s) {sorted(unknown)} are not declared by any of {[n.stem for n in selected]}")
    if resolved.publish:  # refuse a dirty tree now, not at the first save hours later
        from salbench import provenance

        provenance.require_exact_code()
    os.environ[progress_bars.TEXT_ENV] = "1"  # the kernels' bars as text, for the status line
    removed = cache.clean_stale_tmp()
    if removed:
        print(f"removed {removed} unfinished cache folder(s) left by stopped runs", flush=True)
    executed = []
    for i, nb in enumerate(selected, 1):
        nb_params = {"profile": profile_arg, **{k: v for k, v in params.items() if k in declared[nb]}}
        executed.append(run_notebook(nb, profile, nb_params, f"[{i}/{len(selected)}]", progress))
    return executed


# --------------------------------------------------------------------------- hygiene

# Largest committed notebook (bytes): a smoke run's figures fit well below it.
MAX_NOTEBOOK_BYTES = 1_000_000
ABSOLUTE_PATH = re.compile(r"/root/|/home/|/work/|site-packages")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}")
_PROGRESS_LINE = re.compile(r"\d+%\|")  # a tqdm bar
_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
_CELL_METADATA_DROP = ("execution", "papermill", "ExecuteTime")
_NB_METADATA_DROP = ("papermill", "widgets", "execution")


def _scrub_paths(text: str, prefixes: list[tuple[str, str]]) -> str:
    for prefix, replacement in prefixes:
        text = text.replace(prefix + "/", "" if replacement == "." else replacement + "/").replace(prefix, replacement)
    text = re.sub(r"/[^\s'\"]*/site-packages/", "<site-packages>/", text)
    return re.sub(r"/(?:root|home/[^/\s'\"]+)/", "~/", text)


def _clean_stdout(text: str) -> str:
    lines = []
    for line in text.split("\n"):
        line = line.rsplit("\r", 1)[-1]  # what a terminal shows of a redrawn line
        if not _PROGRESS_LINE.search(line):
            lines.append(line)
    return "\n".join(lines)


def clean_notebook(path: Path, root: Path | None = None) -> Path:
    """Rewrite the notebook at `path` (atomically) without what makes it noisy or
    machine-specific: stderr outputs (warnings, progress bars), widget views, progress
    bars in stdout, papermill's injected-parameters cell, per-cell execution metadata and
    timestamps, and absolute paths (the repository and cache become relative; home
    folders "~/"; installed packages "<site-packages>/")."""
    import nbformat

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    # The cache first: it may lie outside the repository (SALBENCH_CACHE).
    roots = [(str(paths.cache_dir().resolve()), "$SALBENCH_CACHE"), (str(Path(root or paths.repo_root()).resolve()), ".")]
    if roots[0][0].startswith(roots[1][0] + "/"):
        roots = roots[1:]
    for key in _NB_METADATA_DROP:
        nb.metadata.pop(key, None)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        for key in _CELL_METADATA_DROP:
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.outputs:
            if out.output_type == "stream":
                if out.name == "stderr":
                    continue
                out.text = _scrub_paths(_clean_stdout(out.text), roots)
                if not out.text.strip():
                    continue
            elif out.output_type in ("display_data", "execute_result"):
                if _WIDGET_MIME in out.get("data", {}):
                    continue
                for mime in ("text/plain", "text/html", "text/markdown"):
                    if mime in out.data:
                        out.data[mime] = _scrub_paths(out.data[mime], roots)
            elif out.output_type == "error":
                out.traceback = [_scrub_paths(_ANSI.sub("", t), roots) for t in out.traceback]
            outputs.append(out)
        cell.outputs = outputs
    with atomic.atomic_path(path) as tmp:
        nbformat.write(nb, tmp)
    return path


def notebook_problems(path: Path) -> list[str]:
    """Why the notebook at `path` may not be committed (empty when it may)."""
    path = Path(path)
    text = path.read_text()
    nb = json.loads(text)
    problems = []
    if path.stat().st_size >= MAX_NOTEBOOK_BYTES:
        problems.append(f"{path.stat().st_size} bytes (limit {MAX_NOTEBOOK_BYTES})")
    n_stderr = sum(o.get("name") == "stderr" for c in nb["cells"] for o in c.get("outputs", []))
    if n_stderr:
        problems.append(f"{n_stderr} stderr outputs")
    for pattern, what in ((ABSOLUTE_PATH, "absolute path"), (TIMESTAMP, "timestamp")):
        m = pattern.search(text)
        if m:
            problems.append(f"{what} {text[max(m.start() - 30, 0):m.end() + 30]!r}")
    meta = [k for c in nb["cells"] for k in _CELL_METADATA_DROP if k in c.get("metadata", {})]
    meta += [k for k in _NB_METADATA_DROP if k in nb.get("metadata", {})]
    if meta:
        problems.append(f"execution metadata {sorted(set(meta))}")
    return problems


def refresh_committed(only: list[str] | None = None) -> list[Path]:
    """Re-run notebooks on their smoke defaults and write the cleaned result over the
    committed notebooks (`make notebooks`); returns the notebooks written."""
    written = []
    for executed in reproduce("smoke", only):
        target = paths.repo_root() / "notebooks" / (executed.stem.split("__")[0] + ".ipynb")
        with atomic.atomic_path(target) as tmp:  # the committed notebook changes only once clean
            shutil.copyfile(executed, tmp)
            clean_notebook(tmp, root=paths.repo_root())
            left = notebook_problems(tmp)
            if left:
                raise SystemExit(f"error: {target.name}: still not clean after cleaning: {'; '.join(left)}")
        written.append(target)
    return written


USAGE = "usage: python -m salbench.runner clean NOTEBOOK.ipynb ... | refresh [NOTEBOOK ...]"

if __name__ == "__main__":  # python -m salbench.runner clean notebooks/*.ipynb | refresh [01 02 ...]
    if len(sys.argv) < 2 or sys.argv[1] not in ("clean", "refresh") or (sys.argv[1] == "clean" and len(sys.argv) < 3):
        raise SystemExit(USAGE)
    if sys.argv[1] == "refresh":
        for p in refresh_committed(sys.argv[2:] or None):
            print(f"{p.relative_to(paths.repo_root())}: refreshed and clean")
        raise SystemExit(0)
    for p in sys.argv[2:]:
        clean_notebook(Path(p))
        left = notebook_problems(Path(p))
        print(f"{p}: " + ("; ".join(left) if left else "clean"))
