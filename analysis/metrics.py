"""What the new labels say about models and the dataset: plain functions over arrays and tables.

Conventions: N images, M models, k top-k ranks. Accuracies are fractions in [0, 1]. ``labels`` are original
class indices (N,) with -1 where unknown; ``label_sets`` is a :class:`~multilabelfy.analysis.labelsets.LabelSets`
in the same order; ``topk`` is an int array (N, k), most probable first.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .labelsets import LabelSets
from .manifest import UNKNOWN

Z_95 = 1.96  # two-sided 95% normal quantile


def label_count_distribution(counts: np.ndarray) -> pd.DataFrame:
    """How many images have 0, 1, 2, ... labels.

    ``counts``: int array (N,) of labels per image (``LabelSets.counts()``). Returns one row per count from 0
    to the largest, columns ``label_count``, ``images``, ``percent`` (of N, 0..100).

    Example::

        >>> label_count_distribution(np.array([1, 1, 2, 0]))
           label_count  images  percent
        0            0       1     25.0
        1            1       2     50.0
        2            2       1     25.0
    """
    counts = np.asarray(counts, dtype=np.int64)
    images = np.bincount(counts, minlength=1)
    return pd.DataFrame({
        "label_count": np.arange(len(images)),
        "images": images,
        "percent": 100.0 * images / max(len(counts), 1),
    })


def count_groups(counts: np.ndarray, cap: int = 4) -> tuple[np.ndarray, list[str]]:
    """Group images by label count, counts of ``cap`` or more together: ``(groups (N,), names)``.

    ``names[g]`` is ``'0'``, ``'1'``, ... and ``f'{cap}+'`` for the last group; only groups up to the largest
    count present are made. Example: ``count_groups([0, 1, 5], cap=3)`` -> ``([0, 1, 3], ['0', '1', '2', '3+'])``.
    """
    counts = np.asarray(counts, dtype=np.int64)
    groups = np.minimum(counts, cap)
    top = int(groups.max(initial=0))
    names = [str(g) for g in range(top + 1)]
    if top == cap:
        names[-1] = f"{cap}+"
    return groups, names


def real_accuracy(topk: np.ndarray, label_sets: LabelSets, k: int = 1) -> float:
    """ReaL top-``k`` accuracy: share of images with a non-empty set whose top-``k`` hits the set.

    Example: sets ``[(1,), (2, 3), ()]`` and top-1 ``[1, 3, 7]`` -> 1.0 (the third image is left out).
    NaN when no image has a label or ``topk`` has fewer than ``k`` columns.
    """
    hits = label_sets.contains(np.arange(len(topk))[:, None], topk[:, :k])
    return _share(hits, label_sets.counts() > 0, k)


def topk_accuracy(topk: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Top-``k`` accuracy against the original labels over images whose label is known (NaN if none)."""
    labels = np.asarray(labels)
    return _share(topk[:, :k] == labels[:, None], labels != UNKNOWN, k)


def _share(hits: np.ndarray, include: np.ndarray, k: int) -> float:
    """Share of the ``include``d rows of ``hits`` (N, >=k) with a hit among the first ``k`` columns."""
    if not include.any() or hits.shape[1] < k:
        return float("nan")
    return float(hits[include, :k].any(axis=1).mean())


def model_accuracies(predictions: Mapping[str, np.ndarray], labels: np.ndarray,
                     label_sets: LabelSets) -> pd.DataFrame:
    """One row per model: ``top1``, ``top5`` (original labels), ``real_accuracy``, ``real_top5`` (new sets).

    ``predictions``: model name -> topk (N, k). Top-5 figures are NaN for a model with k < 5. Same rules as
    :func:`topk_accuracy` and :func:`real_accuracy`, with each model's memberships looked up once for both k.
    """
    labels = np.asarray(labels)
    known = labels != UNKNOWN
    valid = label_sets.counts() > 0
    positions = np.arange(len(labels))[:, None]
    rows = []
    for name, topk in predictions.items():
        original = topk[:, :5] == labels[:, None]
        real = label_sets.contains(positions, topk[:, :5])
        rows.append({"model": name, "top1": _share(original, known, 1), "top5": _share(original, known, 5),
                     "real_accuracy": _share(real, valid, 1), "real_top5": _share(real, valid, 5)})
    return pd.DataFrame(rows, columns=["model", "top1", "top5", "real_accuracy", "real_top5"])


def linear_fit(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Least-squares line ``y = slope * x + intercept`` and its R^2, ignoring NaN pairs.

    Returns ``{'slope', 'intercept', 'r2', 'n'}``; slope/intercept/r2 are NaN with fewer than two points or
    constant ``x``; r2 is 1 when ``y`` is constant and fitted exactly. Example: x = [0, 1, 2], y = [1, 3, 5] ->
    slope 2, intercept 1, r2 1.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    nan = float("nan")
    if len(x) < 2 or np.ptp(x) == 0:
        return {"slope": nan, "intercept": nan, "r2": nan, "n": int(len(x))}
    dx = x - x.mean()
    slope = float((dx * (y - y.mean())).sum() / (dx * dx).sum())
    intercept = float(y.mean() - slope * x.mean())
    residual = ((y - (slope * x + intercept)) ** 2).sum()
    total = ((y - y.mean()) ** 2).sum()
    r2 = float(1.0 - residual / total) if total > 0 else 1.0
    return {"slope": slope, "intercept": intercept, "r2": r2, "n": int(len(x))}


def half_width_95(p: np.ndarray, n: np.ndarray) -> np.ndarray:
    """95% normal-approximation half-width ``U = 1.96 * sqrt(p (1 - p) / n)``; NaN where ``n < 2``.

    ``p`` and ``n`` broadcast together. Example: p = 0.5, n = 100 -> 0.098.
    """
    p = np.asarray(p, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = Z_95 * np.sqrt(p * (1.0 - p) / n)
    return np.where(n >= 2, u, np.nan)


def accuracy_by_group(correct: np.ndarray, groups: np.ndarray, num_groups: int,
                      include: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``correct`` per group, for many models at once.

    ``correct``: bool (M, N); ``groups``: int (N,) in ``0..num_groups-1``; ``include``: bool (N,) of images
    to count (default all). Returns ``(p (M, G), n (G,))``: accuracy (NaN where a group is empty) and images
    per group. One matrix product instead of loops: ``correct @ one_hot(groups)``.
    """
    include = np.ones(correct.shape[1], dtype=bool) if include is None else include
    one_hot = np.zeros((correct.shape[1], num_groups), dtype=np.float64)
    one_hot[np.flatnonzero(include), groups[include]] = 1.0
    n = one_hot.sum(axis=0)
    hits = correct.astype(np.float64) @ one_hot
    with np.errstate(divide="ignore", invalid="ignore"):
        p = hits / n
    return np.where(n > 0, p, np.nan), n.astype(np.int64)


def top1_by_label_count(predictions: Mapping[str, np.ndarray], labels: np.ndarray, counts: np.ndarray,
                        cap: int = 4) -> pd.DataFrame:
    """Top-1 accuracy (original labels) per model and label-count group, with its 95% half-width.

    Long table: ``model``, ``label_count`` (group name from :func:`count_groups`), ``images`` (with a known
    original label), ``top1``, ``margin`` (``U``, NaN where images < 2). The paper's finding: top-1 falls as an
    image's label count grows.
    """
    groups, names = count_groups(counts, cap)
    models = list(predictions)
    if not models:
        return pd.DataFrame(columns=["model", "label_count", "images", "top1", "margin"])
    correct = np.stack([predictions[m][:, 0] == labels for m in models])
    p, n = accuracy_by_group(correct, groups, len(names), include=np.asarray(labels) != UNKNOWN)
    return pd.DataFrame({
        "model": np.repeat(models, len(names)),
        "label_count": np.tile(names, len(models)),
        "images": np.tile(n, len(models)),
        "top1": p.ravel(),
        "margin": half_width_95(p, n[None, :]).ravel(),
    })


def class_agreement(labels: np.ndarray, label_sets: LabelSets, num_classes: int) -> pd.DataFrame:
    """Per original class: how often the original label survives in the new label set.

    One row per class with at least one image: ``class``, ``images`` (with this original label),
    ``kept`` (original label in the new set), ``no_label`` (new set empty), ``agreement`` = kept / images.
    Sorted by agreement, lowest first (the classes whose labels most need a look).
    """
    labels = np.asarray(labels)
    known = labels != UNKNOWN
    kept = label_sets.contains(np.arange(len(labels)), labels) & known
    empty = (label_sets.counts() == 0) & known
    images = np.bincount(labels[known], minlength=num_classes)
    table = pd.DataFrame({
        "class": np.arange(len(images)),
        "images": images,
        "kept": np.bincount(labels[kept], minlength=num_classes),
        "no_label": np.bincount(labels[empty], minlength=num_classes),
    })
    table = table[table["images"] > 0].copy()
    table["agreement"] = table["kept"] / table["images"]
    return table.sort_values(["agreement", "class"], kind="stable").reset_index(drop=True)


def compare_label_sets(a: LabelSets, b: LabelSets, num_classes: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare two label sets of the same images (same order): per image and per class.

    Per image: ``image_id``, ``count_a``, ``count_b``, ``common``, ``identical``, ``jaccard`` (|A∩B| / |A∪B|;
    1 when both are empty). Per class (classes used by either): ``class``, ``in_a``, ``in_b``, ``in_both``,
    ``jaccard`` (images with the class in both / in either).
    """
    if len(a) != len(b):
        raise ValueError(f"label sets differ in length: {len(a)} vs {len(b)}")
    count_a, count_b = a.counts(), b.counts()
    positions_a, classes_a = a.pairs()
    in_both = b.contains(positions_a, classes_a)
    common = np.bincount(positions_a[in_both], minlength=len(a))
    union = count_a + count_b - common
    with np.errstate(divide="ignore", invalid="ignore"):
        jaccard = np.where(union > 0, common / union, 1.0)
    per_image = pd.DataFrame({
        "image_id": a.image_ids, "count_a": count_a, "count_b": count_b, "common": common,
        "identical": (common == count_a) & (common == count_b), "jaccard": jaccard,
    })
    _, classes_b = b.pairs()
    per_class = pd.DataFrame({
        "class": np.arange(num_classes),
        "in_a": np.bincount(classes_a, minlength=num_classes),
        "in_b": np.bincount(classes_b, minlength=num_classes),
        "in_both": np.bincount(classes_a[in_both], minlength=num_classes),
    })
    per_class = per_class[(per_class["in_a"] > 0) | (per_class["in_b"] > 0)].copy()
    per_class["jaccard"] = per_class["in_both"] / (per_class["in_a"] + per_class["in_b"] - per_class["in_both"])
    return per_image, per_class.reset_index(drop=True)
