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


def aopc_vs_random(scores, random_baseline, background: str, unit: int, ls):
    """Tomsett et al. Figure 2a: per method, mean AOPC minus the mean random-ordering
    AOPC against L, for MoRF and LeRF under each perturbation style and scored output
    (probability; logit margin); the grey band is the 2.5-97.5 % range of the random
    orderings' data-set means around their mean."""
    sub = scores[(scores.background == background) & (scores.unit == unit)]
    base = random_baseline[(random_baseline.background == background) & (random_baseline.unit == unit)]
    panels = sorted(sub.groupby(["output", "style"]).groups, key=lambda k: (k[0] != "probability", k))
    methods = sorted(sub.method.unique())
    palette = dict(zip(methods, sns.color_palette("tab20", len(methods))))
    fig, axes = plt.subplots(len(panels), 2, figsize=(8, 2.6 * len(panels)), sharex=True, squeeze=False)
    for r, (output, style) in enumerate(panels):
        b = base[(base["style"] == style) & (base["output"] == output)].set_index("L").reindex(ls)
        for c, direction in enumerate(("morf", "lerf")):
            ax = axes[r, c]
            ax.fill_between(ls, b.ci_low - b["mean"], b.ci_high - b["mean"], color="0.85", label="random orderings")
            ax.axhline(0, color="0.5", linewidth=0.6)
            for m in methods:
                rows = sub[(sub.method == m) & (sub["style"] == style) & (sub["output"] == output)]
                ys = [rows[f"aopc_{direction}_L{L}"].mean() - b.loc[L, "mean"] for L in ls]
                ax.plot(ls, ys, marker="o", ms=2.5, linewidth=1, color=palette[m], label=m.replace("_", " "))
            ax.set_title(f"{direction.upper()}, {style} perturbation, {output.replace('_', ' ')}", fontsize=9)
            ax.set_ylabel("AOPC - random")
    for ax in axes[-1]:
        ax.set_xlabel("L (perturbation steps)")
    axes[0, -1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.suptitle(f"{background}, unit {unit} px (n = {sub.image.nunique()} images)", fontsize=10)
    sns.despine(fig)
    fig.tight_layout()
    return fig


def faithfulness_distributions(scores, unit: int):
    """Tomsett et al. Figure 2b: faithfulness F per image for every method, one panel per
    (background, style), one row per scored output; images where F is undefined are left
    out (counted in the table)."""
    sub = scores[(scores.unit == unit)].dropna(subset=["faithfulness"])
    panels = sorted(sub.groupby(["background", "style"]).groups)
    outputs = sorted(sub["output"].unique(), key=lambda o: (o != "probability", o))
    methods = sorted(sub.method.unique())
    fig, grid = plt.subplots(len(outputs), len(panels), figsize=(0.3 * len(methods) * len(panels) + 2,
                                                                 3.4 * len(outputs)), sharey=True, squeeze=False)
    for row, output in zip(grid, outputs):
        _faithfulness_row(sub[sub["output"] == output], row, panels, methods, output)
    sns.despine(fig)
    fig.tight_layout()
    return fig


def _faithfulness_row(sub, axes, panels, methods, output):
    for ax, (bg, style) in zip(axes, panels):
        d = sub[(sub.background == bg) & (sub["style"] == style)]
        sns.boxplot(data=d, x="method", y="faithfulness", order=methods, ax=ax, color="#d9d9d9", fliersize=1.5,
                    linewidth=0.7)
        ax.axhline(0, color="0.5", linewidth=0.6)
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels([m.replace("_", " ") for m in methods], rotation=60, ha="right", fontsize=7)
        ax.set_xlabel("")
        ax.set_title(f"{bg}, {style}, {output.replace('_', ' ')}", fontsize=9)
    axes[0].set_ylabel("faithfulness F per image")


def fidelity_validity(validity, unit: int, l_max: int):
    """Do fidelity metrics agree with the ground truth? Left: mean per-image Spearman
    between the methods' ranking by each metric and by localization AP (95 % CI).
    Right: mean share of the MoRF drop at L = l_max that comes from lesion units."""
    v = validity[validity.unit == unit]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    rho = v[v.question == "spearman_with_ap"]
    cols = list(dict.fromkeys(rho.column))
    groups = sorted(rho.groupby(["background", "style", "output"]).groups)
    width = 0.8 / max(len(groups), 1)
    for k, (bg, style, output) in enumerate(groups):
        r = rho[(rho.background == bg) & (rho["style"] == style) & (rho["output"] == output)]
        r = r.set_index("column").reindex(cols)
        xs = np.arange(len(cols)) + (k - (len(groups) - 1) / 2) * width
        ax1.errorbar(xs, r["value"], yerr=[r["value"] - r.ci_low, r.ci_high - r["value"]], fmt="o", ms=3,
                     elinewidth=0.8, label=f"{bg}, {style}, {output.replace('_', ' ')}")
    ax1.axhline(0, color="0.5", linewidth=0.6)
    ax1.set_xticks(range(len(cols)))
    ax1.set_xticklabels([c.replace("aopc_", "").replace("_", " ") for c in cols], rotation=50, ha="right", fontsize=7)
    ax1.set_ylabel("Spearman with localization AP")
    ax1.legend(fontsize=6, frameon=False)
    share = v[v.question == "lesion_share"]
    share = share.assign(group=share["background"] + ", " + share["output"].str.replace("_", " "))
    sns.barplot(data=share, x="method", y="value", hue="group", ax=ax2, errorbar=None)
    ax2.set_xticks(range(share.method.nunique()))
    ax2.set_xticklabels([m.replace("_", " ") for m in dict.fromkeys(share.method)], rotation=60, ha="right", fontsize=7)
    ax2.set_ylabel(f"share of MoRF drop (L = {l_max}) from lesion units")
    ax2.set_xlabel("")
    ax2.legend(fontsize=6, frameon=False)
    sns.despine(fig)
    fig.tight_layout()
    return fig


def cascade_curves(cascade, value: str, orders, baseline=None, ylabel: str | None = None):
    """Mean `value` over images against the cascade step, one line per method, one panel
    per (background, order); step 0 is the trained model and tick labels name the layer
    each step re-draws. With `baseline` (per-image ``baseline_ssim`` per background and
    method): each method's mean baseline as a dotted line (Arun et al. Figure 3)."""
    backgrounds = list(dict.fromkeys(cascade.background))
    methods = list(dict.fromkeys(cascade.method))
    palette = dict(zip(methods, sns.color_palette("tab20", len(methods))))
    fig, axes = plt.subplots(len(backgrounds), len(orders), figsize=(4.2 * len(orders) + 1.5, 3.2 * len(backgrounds)),
                             sharey=True, squeeze=False)
    for r, bg in enumerate(backgrounds):
        for c, order in enumerate(orders):
            ax = axes[r, c]
            sub = cascade[(cascade.background == bg) & (cascade.order == order)]
            for m in methods:
                mean = sub[sub.method == m].groupby("step")[value].mean()
                ax.plot(mean.index, mean.to_numpy(), marker="o", ms=2.5, linewidth=1, color=palette[m],
                        label=m.replace("_", " "))
                if baseline is not None:
                    b = baseline[(baseline.background == bg) & (baseline.method == m)].baseline_ssim
                    if len(b):
                        ax.axhline(float(b.mean()), color=palette[m], linestyle=":", linewidth=0.9)
            ticks = sub[["step", "layer"]].drop_duplicates().sort_values("step")
            ax.set_xticks(ticks.step.to_numpy())
            ax.set_xticklabels(["trained" if s == 0 else layer for s, layer in zip(ticks.step, ticks.layer)],
                               rotation=60, ha="right", fontsize=6)
            n = sub.groupby("method").image.nunique()
            ax.set_title(f"{bg}, {order.replace('_', '-')} (n = {'/'.join(map(str, sorted(set(n))))} images)",
                         fontsize=9)
        axes[r, 0].set_ylabel(ylabel or value)
    handles, labels = axes[0, -1].get_legend_handles_labels()
    if baseline is not None:
        handles.append(plt.Line2D([], [], color="0.3", linestyle=":"))
        labels.append("randomization baseline")
    axes[0, -1].legend(handles, labels, fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    sns.despine(fig)
    fig.tight_layout()
    return fig


def consistency_boxes(scores, low: float, high_kind: str, ylabel: str = "SSIM"):
    """Arun et al. Figure 4: per-image SSIM of repeatability and reproducibility per
    method (box plots; methods not applicable to an architecture have no box), the
    low baseline as a dashed line and the pairs of U-Nets as a box with a dashed mean
    line; one panel per background."""
    backgrounds = list(dict.fromkeys(scores.background))
    d = scores.dropna(subset=["ssim"])
    methods = [m for m in dict.fromkeys(scores.method) if m != high_kind]
    fig, axes = plt.subplots(1, len(backgrounds), figsize=(0.45 * (len(methods) + 1) * len(backgrounds) + 2.5, 3.6),
                             sharey=True, squeeze=False)
    for ax, bg in zip(axes[0], backgrounds):
        sub = d[(d.background == bg) & (d.kind != high_kind)]
        unet = d[(d.background == bg) & (d.kind == high_kind)]
        sns.boxplot(data=sub, x="method", y="ssim", hue="kind", order=methods,
                    hue_order=["repeatability", "reproducibility"], ax=ax, fliersize=1.5, linewidth=0.7,
                    palette=["#6baed6", "#fd8d3c"])
        if len(unet):
            ax.boxplot(unet.ssim.to_numpy(), positions=[len(methods)], widths=0.5, patch_artist=True,
                       boxprops={"facecolor": "#08519c", "linewidth": 0.7}, medianprops={"color": "white"},
                       flierprops={"markersize": 1.5})
            ax.axhline(float(unet.ssim.mean()), color="#08519c", linestyle="--", linewidth=0.8,
                       label="U-Net pairs (mean)")
        ax.axhline(low, color="#9ecae1", linestyle="--", linewidth=0.8, label=f"low baseline {low}")
        ax.set_xticks(range(len(methods) + 1))
        ax.set_xticklabels([m.replace("_", " ") for m in methods] + ["U-Net"], rotation=60, ha="right", fontsize=7)
        ax.set_xlim(-0.6, len(methods) + 0.6)
        ax.set_xlabel("")
        ax.set_title(f"{bg} (n = {sub.image.nunique()} images)", fontsize=9)
        ax.legend(fontsize=6, frameon=False)
    axes[0, 0].set_ylabel(ylabel)
    sns.despine(fig)
    fig.tight_layout()
    return fig


def run_spread(by_run):
    """Run-to-run spread (issue 14): mean localization AP per method for each classifier
    run (points; bars: 95 % interval over images), one panel per background."""
    backgrounds = list(dict.fromkeys(by_run.background))
    methods = list(dict.fromkeys(by_run.method))
    runs = sorted(by_run.run.unique())
    fig, axes = plt.subplots(1, len(backgrounds), figsize=(0.42 * len(methods) * len(backgrounds) + 2.5, 3.4),
                             sharey=True, squeeze=False)
    for ax, bg in zip(axes[0], backgrounds):
        sub = by_run[by_run.background == bg].assign(run=lambda d: "run " + d.run.astype(str))
        sns.pointplot(data=sub, x="method", y="ap", hue="run", order=methods, hue_order=[f"run {r}" for r in runs],
                      dodge=0.4, linestyle="none", errorbar=("ci", 95), markersize=3, err_kws={"linewidth": 0.8},
                      ax=ax, seed=0)
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels([m.replace("_", " ") for m in methods], rotation=60, ha="right", fontsize=7)
        ax.set_xlabel("")
        ax.set_ylabel("localization AP (mean over images)")
        ax.set_title(f"{bg} (n = {sub.image.nunique()} images)", fontsize=9)
        ax.legend(fontsize=6, frameon=False)
    sns.despine(fig)
    fig.tight_layout()
    return fig
