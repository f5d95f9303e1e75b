"""Two pytest processes: eager-mode tests, and graph-mode tests (marker ``graph``).

iNNvestigate needs TensorFlow graph mode for the whole process, which breaks eager-mode
training tests in the same process. Importing salbench changes nothing, so every test
module is collected in both processes; `pytest tests` runs the tests *not* marked
``graph``, and `SALBENCH_GRAPH_TESTS=1 pytest tests` switches to graph mode before
collection and runs only those marked ``graph``. `make test` runs both.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

GRAPH_TESTS = os.environ.get("SALBENCH_GRAPH_TESTS") == "1"


def pytest_configure(config):
    config.addinivalue_line("markers", "graph: needs TensorFlow graph mode (the SALBENCH_GRAPH_TESTS=1 process)")
    if GRAPH_TESTS:
        from salbench.saliency import use_graph_mode

        use_graph_mode()  # before any test module builds a model


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        (keep if (item.get_closest_marker("graph") is not None) == GRAPH_TESTS else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A private cache folder so tests never read or write build/cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SALBENCH_CACHE", str(folder))
    return folder
