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


def budding_figure2(summary, methods, background: str):
    """Budding et al. Figure 2: mean ROC-AUC, mAP and PREC99 per method (bars) with
    bootstrap 95 % CIs, for one background. `summary`: rows of `stats.summarise` for
    the trained model (columns method, metric, mean, ci_lo, ci_hi)."""
    wanted = {"roc_auc": "ROC-AUC", "ap": "mAP", "prec99": "PREC99"}
    sub = summary[summary.metric.isin(wanted) & summary.method.isin(methods)].copy()
    sub["metric"] = sub.metric.map(wanted)
    order = [m for m in methods if m in set(sub.method)]  # baselines have no trained-model rows
    fig, ax = plt.subplots(figsize=(0.55 * len(order) + 2.5, 3))
    width = 0.27
    for k, (metric, color) in enumerate(zip(wanted.values(), sns.color_palette("colorblind", 3))):
        rows = sub[sub.metric == metric].set_index("method").reindex(order)
        xs = np.arange(len(order)) + (k - 1) * width
        ax.bar(xs, rows["mean"], width, color=color, label=metric)
        ax.errorbar(xs, rows["mean"], yerr=[rows["mean"] - rows["ci_lo"], rows["ci_hi"] - rows["mean"]],
                    fmt="none", ecolor="k", elinewidth=0.7, capsize=1.5)
    ax.set_xticks(np.arange(len(order)))
    ax.set_xticklabels([m.replace("_", " ") for m in order], rotation=40, ha="right")
    ax.set_ylim(0, 1.02)
    ax.set_yticks(np.linspace(0, 1, 5))
    ax.set_ylabel("score (mean, 95 % CI)")
    ax.set_title(f"Explanation performance, {background} background", pad=16)
    # Above the axes: ROC-AUC bars reach 1.0.
    ax.legend(fontsize=7, ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False,
              borderaxespad=0.1)
    sns.despine(fig)
    fig.tight_layout()
    return fig


def auprc_boxplot(scores, background: str, low: str, high: str, constant: str | None = None):
    """Arun et al. Figure 2A: AUPRC per image for every method of the trained model, with
    the low (average mask) and high (U-Net) baselines as boxes and dashed lines, and the
    mean AUPRC of `constant` (a map with no information) as a dotted line."""
    sub = scores[(scores.background == background) & ((scores.model == "trained") | scores.method.isin([low, high]))]
    order = (sub[~sub.method.isin([low, high])].groupby("method").auprc.mean().sort_values(ascending=False).index.tolist()
             + [low, high])
    fig, ax = plt.subplots(figsize=(0.45 * len(order) + 2, 3.2))
    palette = {m: ("#9ecae1" if m == low else "#08519c" if m == high else "#d9d9d9") for m in order}
    sns.boxplot(data=sub, x="method", y="auprc", hue="method", order=order, palette=palette, ax=ax,
                fliersize=1.5, linewidth=0.7, legend=False, showmeans=True, meanline=True,
                meanprops={"linestyle": "--", "color": "k", "linewidth": 0.8})
    for name, color in ((low, "#9ecae1"), (high, "#08519c")):
        ax.axhline(sub[sub.method == name].auprc.mean(), color=color, linestyle="--", linewidth=1)
    if constant is not None:
        flat = scores[(scores.background == background) & (scores.method == constant)].auprc.mean()
        ax.axhline(flat, color="#d62728", linestyle=":", linewidth=1)
        ax.annotate("constant map", (len(order) - 0.5, flat), xytext=(0, 2), textcoords="offset points",
                    ha="right", va="bottom", fontsize=7, color="#d62728")
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([m.replace("_", " ") for m in order], rotation=40, ha="right")
    ax.set_xlabel("")
    ax.set_ylabel("AUPRC per image")
    ax.set_title(f"Localization utility, {background} (solid: median, dashed: mean)")
    sns.despine(fig)
    fig.tight_layout()
    return fig


def trained_vs_random(summary, metric: str = "auprc"):
    """Mean score (95 % CI) of each model-based method for the trained and the
    weight-randomized classifier, one panel per background."""
    sub = summary[(summary.metric == metric) & summary.model.isin(["trained", "randomized"])]
    backgrounds = list(dict.fromkeys(sub.background))
    methods = sorted(set(sub.method))
    fig, axes = plt.subplots(1, len(backgrounds), figsize=(0.4 * len(methods) * len(backgrounds) + 2, 3.2),
                             sharey=True, squeeze=False)
    colors = {"trained": "#08519c", "randomized": "#fd8d3c"}
    for ax, background in zip(axes[0], backgrounds):
        for k, model in enumerate(("trained", "randomized")):
            rows = sub[(sub.background == background) & (sub.model == model)].set_index("method").reindex(methods)
            xs = np.arange(len(methods)) + (k - 0.5) * 0.3
            ax.errorbar(xs, rows["mean"], yerr=[rows["mean"] - rows["ci_lo"], rows["ci_hi"] - rows["mean"]],
                        fmt="o", ms=3, color=colors[model], label=model, elinewidth=0.8)
        ax.set_xticks(np.arange(len(methods)))
        ax.set_xticklabels([m.replace("_", " ") for m in methods], rotation=60, ha="right", fontsize=7)
        n_images = sorted(set(sub[sub.background == background]["n"]))
        ax.set_title(f"{background} (n = {'/'.join(map(str, n_images))} images)")
    axes[0, 0].set_ylabel(f"mean {metric} (95 % CI)")
    axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    sns.despine(fig)
    fig.tight_layout()
    return fig
