"""Importing any salbench module leaves TensorFlow as it found it (eager), and the
saliency package imports nothing of data, models, metrics or stats."""

import ast
import pathlib
import subprocess
import sys

SRC = pathlib.Path(__file__).resolve().parents[2] / "src" / "salbench"


def test_imports_leave_eager_mode():
    code = ("import salbench.saliency, salbench.pipeline, salbench.metrics, salbench.stats, tensorflow as tf; "
            "assert tf.executing_eagerly(), 'an import switched TensorFlow to graph mode'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]


def test_saliency_package_respects_module_boundaries():
    forbidden = ("salbench.data", "salbench.models", "salbench.metrics", "salbench.stats", "salbench.pipeline")
    for path in (SRC / "saliency").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"
