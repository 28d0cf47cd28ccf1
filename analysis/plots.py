"""Charts of the analysis tables, as PNG files. Nothing here computes a figure: see ``metrics``.

Figures are drawn on matplotlib's Agg canvas directly (``matplotlib.figure.Figure``), so no global
backend or pyplot state is touched and the functions work headless.
"""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from multilabelfy.fileio import atomic_path

MAX_ANNOTATED_MODELS = 30  # beyond this, names and cell values would overlap


def save_figure(figure: Figure, path: str | os.PathLike) -> None:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)


def plot_label_counts(distribution: pd.DataFrame, path: str | os.PathLike, pie_cap: int = 3) -> None:
    """Pie (0, 1, 2, ``pie_cap``+ labels) beside a bar chart of every count, from ``label_count_distribution``."""
    figure = Figure(figsize=(11, 4.2))
    pie, bars = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.5]})
    images = distribution["images"].to_numpy()
    counts = distribution["label_count"].to_numpy()
    slices = [images[counts == c].sum() for c in range(pie_cap)] + [images[counts >= pie_cap].sum()]
    total = max(sum(slices), 1)
    names = [f"{c} label{'s' if c != 1 else ''}" for c in range(pie_cap)] + [f"{pie_cap}+ labels"]
    keep = [i for i, s in enumerate(slices) if s > 0]
    colours = ["#9e9e9e", "#4c72b0", "#55a868", "#c44e52"]
    # percentages go in the names: thin slices would make in-slice numbers collide
    pie.pie([slices[i] for i in keep], labels=[f"{names[i]}\n{100 * slices[i] / total:.1f}%" for i in keep],
            colors=[colours[i % len(colours)] for i in keep], startangle=90, counterclock=False,
            wedgeprops={"linewidth": 1, "edgecolor": "white"})
    pie.set_title(f"Images by label count (N = {images.sum():,})")
    bars.bar(counts, images, color="#4c72b0")
    for x, (n, pct) in enumerate(zip(images, distribution["percent"])):
        bars.annotate(f"{n:,}\n{pct:.1f}%", (counts[x], n), ha="center", va="bottom", fontsize=8,
                      xytext=(0, 2), textcoords="offset points")
    bars.set_xticks(counts)
    bars.set_xlabel("labels per image (0 = no valid label)")
    bars.set_ylabel("images")
    bars.set_ylim(0, images.max() * 1.2 if len(images) else 1)
    bars.spines[["top", "right"]].set_visible(False)
    save_figure(figure, path)


def plot_real_vs_top1(accuracies: pd.DataFrame, fit: Mapping[str, float], path: str | os.PathLike) -> None:
    """Scatter of ReaL accuracy against top-1 (percent), one point per model, with the fitted line and y = x."""
    figure = Figure(figsize=(7, 6))
    axes = figure.subplots()
    x = 100 * accuracies["top1"].to_numpy(dtype=float)
    y = 100 * accuracies["real_accuracy"].to_numpy(dtype=float)
    axes.scatter(x, y, s=28, color="#4c72b0", zorder=3, label="models")
    finite = np.isfinite(x) & np.isfinite(y)
    if finite.any():
        low = float(min(x[finite].min(), y[finite].min())) - 2
        high = float(max(x[finite].max(), y[finite].max())) + 2
        line = np.array([low, high])
        axes.plot(line, line, color="#9e9e9e", linestyle=":", linewidth=1, label="y = x")
        if np.isfinite(fit.get("slope", np.nan)):
            # fitted on fractions; the intercept scales with the axes, the slope does not
            axes.plot(line, fit["slope"] * line + 100 * fit["intercept"], color="#c44e52", linewidth=1.5,
                      label=f"ReaL = {fit['slope']:.3f} x top-1 + {100 * fit['intercept']:.2f}  (R² = {fit['r2']:.3f})")
        axes.set_xlim(low, high)
        axes.set_ylim(low, high)
    if len(accuracies) <= MAX_ANNOTATED_MODELS:
        for name, xi, yi in zip(accuracies["model"], x, y):
            axes.annotate(str(name), (xi, yi), fontsize=7, xytext=(4, -3), textcoords="offset points")
    axes.set_xlabel("top-1 accuracy, original labels (%)")
    axes.set_ylabel("ReaL accuracy, new labels (%)")
    axes.set_title("Accuracy on the new labels against the original labels")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize=8)
    save_figure(figure, path)


def plot_heatmap(matrix: pd.DataFrame, path: str | os.PathLike, title: str, colour_label: str,
                 cmap: str = "viridis", percent: bool = True) -> None:
    """Heatmap of a models x label-count table (fractions); NaN cells stay blank. Values shown in cells when
    there are at most ``MAX_ANNOTATED_MODELS`` rows."""
    values = matrix.to_numpy(dtype=float) * (100 if percent else 1)
    rows, columns = values.shape
    figure = Figure(figsize=(2.2 + 1.0 * columns, 1.6 + 0.28 * max(rows, 3)))
    axes = figure.subplots()
    image = axes.imshow(np.ma.masked_invalid(values), cmap=cmap, aspect="auto")
    axes.set_xticks(range(columns), [str(c) for c in matrix.columns])
    axes.set_yticks(range(rows), [str(r) for r in matrix.index], fontsize=7 if rows > 20 else 9)
    axes.set_xlabel("labels per image")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label=colour_label, fraction=0.05)
    if rows <= MAX_ANNOTATED_MODELS:
        for (r, c), value in np.ndenumerate(values):
            if np.isfinite(value):
                red, green, blue, _ = image.cmap(image.norm(value))
                # dark text on light cells, whatever the colour map's direction
                dark_cell = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
                axes.text(c, r, f"{value:.1f}", ha="center", va="center", fontsize=7,
                          color="white" if dark_cell else "black")
    save_figure(figure, path)


def plot_class_agreement(agreement: pd.DataFrame, path: str | os.PathLike) -> None:
    """Histogram over classes of how often the original label survives in the new sets."""
    figure = Figure(figsize=(7, 3.8))
    axes = figure.subplots()
    axes.hist(100 * agreement["agreement"].to_numpy(dtype=float), bins=np.linspace(0, 100, 21), color="#55a868",
              edgecolor="white")
    axes.set_xlabel("images whose original label is in the new set (%)")
    axes.set_ylabel("classes")
    axes.set_title(f"Original-label agreement per class ({len(agreement)} classes)")
    axes.spines[["top", "right"]].set_visible(False)
    save_figure(figure, path)
