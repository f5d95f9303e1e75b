import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A private cache folder so tests never read or write build/cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SALBENCH_CACHE", str(folder))
    return folder
