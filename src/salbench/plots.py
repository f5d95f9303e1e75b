"""One function per figure: arrays / DataFrames in, a matplotlib Figure out."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

GT_COLOR = "#e41a1c"


def data_examples(x: dict[str, np.ndarray], gt: np.ndarray, y: np.ndarray):
    """Rows: one image per class for each background; lesions contoured in red.

    x: background -> (N, H, W); the same indices in every background share lesions.
    """
    backgrounds = list(x)
    n = len(y)
    fig, axes = plt.subplots(len(backgrounds), n, figsize=(2.2 * n, 1.8 * len(backgrounds)), squeeze=False)
    for i, bg in enumerate(backgrounds):
        for j in range(n):
            ax = axes[i, j]
            ax.imshow(x[bg][j], cmap="gray", vmin=0, vmax=1)
            if gt[j].any():
                ax.contour(gt[j], levels=[0.5], colors=GT_COLOR, linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{bg}, class {y[j] + 1}", fontsize=8)
    fig.tight_layout()
    return fig


def lesion_profile(x: dict[str, np.ndarray], lesion_map: np.ndarray, row: int, cols: slice, intensity: float):
    """Intensity along one image row through a lesion centre, per background, with the lesion map."""
    fig, ax = plt.subplots(figsize=(5, 2.6))
    px = np.arange(cols.start, cols.stop)
    for bg, img in x.items():
        ax.plot(px, img[row, cols], label=f"{bg} image")
    ax.plot(px, lesion_map[row, cols], "k--", label=f"lesion map (1 - {1 - intensity:g} w)")
    ax.set_xlabel("column (px)")
    ax.set_ylabel("intensity")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, loc="lower left")
    sns.despine(fig)
    fig.tight_layout()
    return fig


def learning_curves(history):
    """Training and validation loss per epoch; one panel per background, one line per model.

    history: tidy DataFrame with columns background, model, epoch, split, loss.
    """
    g = sns.relplot(data=history, x="epoch", y="loss", hue="model", style="split", col="background",
                    kind="line", height=2.6, aspect=1.3, facet_kws={"sharey": False})
    g.set_titles("{col_name}")
    return g.figure


def saliency_grid(rows: list[tuple[str, np.ndarray, np.ndarray]], maps: dict[str, list[np.ndarray]],
                  signed: dict[str, bool]):
    """Budding et al. Figure 1 layout: one row per (label, image, ground truth); columns input,
    ground truth, then one map per method. Signed maps use a diverging colormap centred on
    zero (symmetric limits at the 99th percentile of |a|); unsigned maps use 'inferno' from 0."""
    methods = list(maps)
    n_cols = 2 + len(methods)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(1.35 * n_cols, 1.1 * len(rows) + 0.4), squeeze=False)
    for i, (label, image, gt) in enumerate(rows):
        axes[i, 0].imshow(image, cmap="gray", vmin=0, vmax=1)
        axes[i, 0].set_ylabel(label, fontsize=7)
        axes[i, 1].imshow(gt, cmap="gray", vmin=0, vmax=1)
        for j, method in enumerate(methods):
            a = maps[method][i]
            ax = axes[i, 2 + j]
            lim = float(np.percentile(np.abs(a), 99)) or 1.0
            if signed[method]:
                ax.imshow(a, cmap="RdBu_r", vmin=-lim, vmax=lim)
            else:
                ax.imshow(a, cmap="inferno", vmin=0, vmax=lim)
            if gt.any():
                ax.contour(gt, levels=[0.5], colors="lime", linewidths=0.4)
    for j, title in enumerate(["input", "ground truth", *methods]):
        axes[0, j].set_title(title.replace("_", " "), fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(pad=0.3)
    return fig
