"""NaN or Inf in x_batch is refused before any method runs, naming the samples.

Unchecked, lrp_z blamed itself ("returned NaN/Inf maps") while gradient, Grad-CAM and
SmoothGrad returned finite maps (SmoothGrad's all zeros). Graph mode: imports saliency.
"""

import numpy as np
import pytest

import salbench.saliency as S
from salbench.saliency import methods_common
from tensorflow import keras

pytestmark = pytest.mark.graph  # the graph-mode process (tests/conftest.py on main)

H, W = 12, 12


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    inp = keras.Input((H, W, 1))
    z = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv_last")(inp)
    z = keras.layers.Flatten()(z)
    out = keras.layers.Dense(2, activation="softmax")(z)
    m = keras.Model(inp, out)
    m.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in m.get_weights()])
    return m


def _x(n=6):
    return np.random.default_rng(1).random((n, H, W, 1)).astype("float32")


@pytest.mark.parametrize("method", ["gradient", "lrp_z", "grad_cam", "smoothgrad", "sobel"])
def test_nan_or_inf_inputs_are_refused_naming_the_samples(model, method):
    x = _x()
    x[1, 3, 4, 0] = np.nan
    x[4, 0, 0, 0] = np.inf
    x_before = x.copy()
    with pytest.raises(ValueError) as err:
        S.explain(model, x, method)
    assert str(err.value) == (
        "x_batch holds NaN or Inf in 2 of 6 samples (indices 1, 4); saliency needs finite inputs"
    )
    np.testing.assert_array_equal(x, x_before)  # the caller's array is left as it was


def test_batched_maps_name_indices_into_the_whole_array(model):
    x = _x(7)
    x[5, 2, 2, 0] = np.nan
    with pytest.raises(ValueError) as err:
        S.compute_maps(model, x, "gradient", batch_size=2, progress=False)
    assert str(err.value) == "x_batch holds NaN or Inf in 1 of 2 samples (indices 5); saliency needs finite inputs"


def test_many_bad_samples_are_counted_and_the_list_is_cut():
    x = _x(30)
    x[:, 0, 0, 0] = -np.inf
    with pytest.raises(ValueError) as err:
        methods_common.check_input(None, x[..., 0])
    msg = str(err.value)
    shown = ", ".join(str(i) for i in range(methods_common.MAX_BAD_SHOWN))
    assert msg == f"x_batch holds NaN or Inf in 30 of 30 samples (indices {shown}, ...); saliency needs finite inputs"
    assert "\n" not in msg


def test_finite_inputs_pass(model):
    x = _x()
    out = methods_common.check_input(model, x[..., 0])
    assert out.shape == (6, H, W, 1) and out.dtype == np.float32
    assert np.isfinite(S.explain(model, x, "gradient")).all()
