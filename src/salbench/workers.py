"""Worker processes for per-image CPU work that holds the GIL, and what they run.

XRAI's region search (PAIR's Felzenszwalb segmentation at six scales, dilation and greedy
search) takes about 1 s per image on one core of a 2-core AMD EPYC, after TensorFlow has
computed the batch's gradients on both cores; threads gain little there (the work holds
the GIL). Images go to a pool of `spawn`ed processes, one per available core, which
import only numpy and ``saliency.core`` (no TensorFlow). The pool is created on first use
and kept for the process. ``SALBENCH_WORKERS=1`` runs everything in the calling process,
and so does a process started from a script or module of unknown shape (``python
file.py``, ``python -m module``): `spawn` re-imports the parent's main module in each
worker, which without a ``__main__`` guard would run it again.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

WORKERS_ENV = "SALBENCH_WORKERS"
_pool: ProcessPoolExecutor | None = None


def worker_count() -> int:
    """Processes to use: $SALBENCH_WORKERS, else the cores this process may run on."""
    raw = os.environ.get(WORKERS_ENV)
    if raw is not None:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"{WORKERS_ENV}={raw!r}: must be a whole number >= 1 (1: no worker processes)")
        return n
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# Main modules whose code sits behind a __main__ guard (Jupyter kernels).
GUARDED_MAIN_MODULES = ("ipykernel_launcher",)


_main_guarded = False


def main_is_guarded() -> None:
    """Declare that the running script keeps its work behind ``if __name__ == "__main__"``
    (e.g. the benchmarks), so worker processes may be used from it."""
    global _main_guarded
    _main_guarded = True


def _spawn_is_safe() -> bool:
    """True when spawned workers will not re-run the parent's code: the parent was started
    as ``python -m package`` (runs ``package.__main__``, which spawn skips), as a Jupyter
    kernel, or interactively."""
    if _main_guarded:
        return True
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None) or ""
    if name == "__main__" or name.endswith(".__main__") or name in GUARDED_MAIN_MODULES:
        return True
    return not hasattr(main, "__file__")


def ignore_sigint() -> None:
    """Ctrl-C (and a kernel's shutdown) interrupts the parent, which stops the pool; idle
    workers would otherwise each print a KeyboardInterrupt traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _get_pool(n: int) -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"), initializer=ignore_sigint)
        atexit.register(shutdown)
    return _pool


def shutdown() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


def map_in_processes(fn, items) -> list:
    """[fn(item) for item in items], in worker processes when there are two or more
    items and workers; `fn` must be a module-level function of a module without TensorFlow."""
    items = list(items)
    n = worker_count()
    if n < 2 or len(items) < 2 or not _spawn_is_safe():
        return [fn(item) for item in items]
    try:
        return list(_get_pool(n).map(fn, items))
    except BrokenProcessPool as err:
        shutdown()  # the next call starts a fresh pool
        raise RuntimeError(f"a worker process died ({err}); rerun, or set {WORKERS_ENV}=1 to work in-process") from err


def xrai_regions(job: tuple) -> np.ndarray:
    """PAIR ``XRAI.GetMask`` of one image from its precomputed base attribution (what XRAI
    computes internally): job = (image (H, W, C), attribution (H, W, C), steps,
    area_threshold, algorithm)."""
    import saliency.core as pair

    image, attribution, steps, area_threshold, algorithm = job
    params = pair.XRAIParameters(steps=steps, area_threshold=area_threshold, algorithm=algorithm)
    return np.asarray(pair.XRAI().GetMask(image, None, base_attribution=attribution, extra_parameters=params),
                      dtype=np.float32)
