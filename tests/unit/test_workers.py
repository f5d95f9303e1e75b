"""Worker processes for XRAI's region search: same maps as in-process, clear errors."""

import numpy as np
import pytest

from salbench import workers


def _jobs(n=3):
    rng = np.random.default_rng(0)
    return [(rng.random((28, 36, 1)).astype(np.float32), rng.normal(size=(28, 36, 1)).astype(np.float32), 10, 1.0,
             "full") for _ in range(n)]


def test_worker_processes_give_the_in_process_maps(monkeypatch):
    jobs = _jobs()
    monkeypatch.setenv(workers.WORKERS_ENV, "1")
    alone = workers.map_in_processes(workers.xrai_regions, jobs)
    monkeypatch.setenv(workers.WORKERS_ENV, "2")
    monkeypatch.setattr(workers, "_spawn_is_safe", lambda: True)
    pooled = workers.map_in_processes(workers.xrai_regions, jobs)
    assert workers._pool is not None  # the pool really ran them
    for a, b in zip(alone, pooled):
        assert a.dtype == np.float32 and a.shape == (28, 36)
        np.testing.assert_array_equal(a, b)
    workers.shutdown()
    assert workers._pool is None


@pytest.mark.parametrize("raw", ["0", "-2", "two", ""])
def test_bad_worker_count_names_the_value(raw, monkeypatch):
    monkeypatch.setenv(workers.WORKERS_ENV, raw)
    with pytest.raises(ValueError, match=f"SALBENCH_WORKERS={raw!r}: must be a whole number >= 1"):
        workers.worker_count()


def test_scripts_of_unknown_shape_stay_in_process(monkeypatch):
    import sys
    import types

    script = types.ModuleType("__main__")
    script.__file__, script.__spec__ = "/tmp/analysis.py", None
    monkeypatch.setitem(sys.modules, "__main__", script)
    assert not workers._spawn_is_safe()
    script.__spec__ = types.SimpleNamespace(name="salbench.__main__")
    assert workers._spawn_is_safe()
    script.__spec__ = types.SimpleNamespace(name="my_analysis")
    assert not workers._spawn_is_safe()
