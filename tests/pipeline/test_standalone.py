"""An analysis notebook runs alone on an empty cache: its model set, made in graph mode,
trains the missing models in a child (eager) process instead of failing."""

import os
import subprocess
import sys

import pytest

SCRIPT = """
from salbench import config, saliency, pipeline
import tensorflow as tf
saliency.use_graph_mode()
models = pipeline.models.ModelSet(config.load_profile("smoke"), progress=False)
assert not tf.executing_eagerly()
print("trained", len(models.trained_models))
"""


@pytest.mark.slow
def test_model_set_in_graph_mode_trains_missing_models_in_a_child(tmp_path):
    env = {**os.environ, "SALBENCH_CACHE": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=1200)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "training the missing models in a child process" in out.stdout
    n_models = out.stdout.strip().splitlines()[-1]
    assert n_models.startswith("trained ") and int(n_models.split()[1]) >= 4
    assert any((tmp_path / "cache" / "models").iterdir())
