"""Two pytest processes: eager-mode tests, and graph-mode tests (tests/saliency/).

Importing `salbench.saliency` switches the whole process to TensorFlow graph mode
(iNNvestigate needs it), which breaks eager-mode training tests collected in the same
process. So `pytest tests` runs everything except tests/saliency/, and
`SALBENCH_GRAPH_TESTS=1 pytest tests` runs tests/saliency/ only; `make test` runs both.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

GRAPH_TESTS = os.environ.get("SALBENCH_GRAPH_TESTS") == "1"
collect_ignore = ["unit", "test_notebooks.py"] if GRAPH_TESTS else ["saliency"]


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A private cache folder so tests never read or write build/cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SALBENCH_CACHE", str(folder))
    return folder
