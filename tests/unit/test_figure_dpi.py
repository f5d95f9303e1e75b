"""Figures of non-publishing runs are saved (and shown inline) at a preview resolution."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from salbench import outputs  # noqa: E402
from salbench.config import load_profile  # noqa: E402

WIDTH_IN = 4.0


def _width_px(path):
    return mpimg.imread(path).shape[1]


def test_smoke_figures_use_preview_dpi(tmp_path, monkeypatch):
    profile = load_profile("smoke")
    monkeypatch.setenv("SALBENCH_ROOT", str(tmp_path))  # outputs go to tmp_path/build
    assert not profile.publish
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 2))
    ax.plot([0, 1])
    path = outputs.save_figure(fig, "preview", profile)
    assert path.parent == tmp_path / "build" / "outputs" / "smoke" / "figures"
    assert fig.dpi == outputs.PREVIEW_DPI
    preview = _width_px(path)
    assert preview <= WIDTH_IN * outputs.PREVIEW_DPI + 2  # bbox "tight" may only crop
    outputs.save_figure(fig, "sharp", profile, dpi=3 * outputs.PREVIEW_DPI)
    assert _width_px(path.with_name("sharp.png")) > 2 * preview
    plt.close(fig)
