"""Overlapping classes from a model's confusion on a labelled set: synonyms, nested classes, co-occurring ones.

Three matrices over classes (C x C), from the proposals (original label ``a``, top-k classes and probabilities):

- ``top1[a, b]``: share of the images labelled ``a`` whose top-1 is ``b`` (the row-normalised confusion matrix);
- ``mass[a, b]``: mean probability the model gives ``b`` on images labelled ``a`` (top-k only; the rest is 0);
- ``together[a, b]``: share of the images labelled ``a`` on which both ``a`` and ``b`` get at least
  ``min_prob``.

**Groups** come from hierarchical clustering (average linkage) of the symmetrised probability mass: the distance
of two classes is ``1 - min(1, mass[a, b] + mass[b, a])`` (0 for two classes the model cannot tell apart, 1 for
classes it never mixes up); clusters are cut at ``1 - min_affinity``.

**Pairs** are named by this heuristic (rates are ``top1`` confusion unless said otherwise):

- ``synonym``: confused both ways, ``min(a->b, b->a) >= min_confusion`` and the smaller rate is at least
  ``symmetry`` times the larger (tabby / tiger cat, laptop / notebook, sunglass / sunglasses);
- ``nested``: confused mostly one way, ``max >= min_confusion`` and the smaller below ``symmetry`` times it; the
  images of the ``from`` class are often taken for the ``to`` class, whose object they show or belong to
  (car wheel -> sports car: a part of; a subtype that the broader class covers);
- ``co-occurring``: rarely confused (below ``min_confusion`` both ways) but both classes are probable together
  (``together`` rate, over the images of either class, at least ``min_together``): two objects in one
  picture (canoe / paddle).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

RELATIONS = ("synonym", "nested", "co-occurring")


def confusion_rates(labels: np.ndarray, indices: np.ndarray, probs: np.ndarray, num_classes: int,
                    min_prob: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The three matrices of the module docstring, and the images per class.

    ``labels``: (N,) original class indices (negative: unknown, left out); ``indices``/``probs``: (N, k) top-k,
    most probable first. Returns ``(top1, mass, together, images)``: float (C, C) row-normalised rates and int
    (C,) images per class (rows of classes without images are 0).

    Example: two images labelled 0 with top-1 ``[1, 0]`` give ``top1[0] = [0.5, 0.5, ...]``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    known = labels >= 0
    labels, indices, probs = labels[known], indices[known], probs[known]
    images = np.bincount(labels, minlength=num_classes)
    top1 = np.bincount(labels * num_classes + indices[:, 0], minlength=num_classes**2).reshape(num_classes, -1)
    mass = np.zeros((num_classes, num_classes))
    np.add.at(mass, (np.repeat(labels, indices.shape[1]), indices.ravel()), probs.ravel())
    # both the own class and another one at least min_prob: count the pair for the image's own class
    strong = probs >= min_prob
    own_strong = (strong & (indices == labels[:, None])).any(axis=1)
    rows, cols = np.nonzero(strong & own_strong[:, None] & (indices != labels[:, None]))
    together = np.bincount(labels[rows] * num_classes + indices[rows, cols],
                           minlength=num_classes**2).reshape(num_classes, -1).astype(float)
    scale = np.where(images > 0, 1.0 / np.maximum(images, 1), 0.0)[:, None]
    return top1 * scale, mass * scale, together * scale, images


def overlapping_pairs(top1: np.ndarray, together: np.ndarray, images: np.ndarray, min_confusion: float = 0.1,
                      symmetry: float = 0.5, min_together: float = 0.2) -> pd.DataFrame:
    """Class pairs that behave as synonyms, nested classes or co-occurring objects (module docstring: rules).

    ``top1``, ``together``: (C, C) from :func:`confusion_rates`; ``images``: (C,). Returns one row per pair,
    strongest first: ``class_a``, ``class_b`` (for ``nested``: ``a`` is the class whose images are taken for
    ``b``), ``images_a``, ``images_b``, ``a_to_b``, ``b_to_a`` (top-1 confusion rates), ``together`` (share of
    both classes' images where both are probable), ``relation``, ``strength`` (the rate that decided it).

    Example: ``top1 = [[.6, .4], [.35, .65]]`` -> one ``synonym`` pair (0, 1) with strength 0.35.
    """
    count_a, count_b = images[:, None], images[None, :]
    both = count_a + count_b
    with np.errstate(divide="ignore", invalid="ignore"):
        joint = np.where(both > 0, (together * count_a + together.T * count_b) / both, 0.0)
    low, high = np.minimum(top1, top1.T), np.maximum(top1, top1.T)
    synonym = (low >= min_confusion) & (low >= symmetry * high)
    # a -> b is the larger direction; a class is not nested in itself
    nested = (high >= min_confusion) & ~synonym & (top1 >= top1.T) & ~np.eye(len(top1), dtype=bool)
    cooccur = (high < min_confusion) & (joint >= min_together)
    upper = np.triu(np.ones_like(synonym), k=1)
    rows = []
    for relation, mask, strength in (("synonym", synonym & upper, low), ("nested", nested, top1),
                                     ("co-occurring", cooccur & upper, joint)):
        a, b = np.nonzero(mask)
        rows.append(pd.DataFrame({"class_a": a, "class_b": b, "relation": relation, "strength": strength[a, b]}))
    table = pd.concat(rows, ignore_index=True)
    a, b = table["class_a"].to_numpy(), table["class_b"].to_numpy()
    table = table.assign(images_a=images[a], images_b=images[b], a_to_b=top1[a, b], b_to_a=top1[b, a],
                         together=joint[a, b])
    columns = ["class_a", "class_b", "images_a", "images_b", "a_to_b", "b_to_a", "together", "relation", "strength"]
    return table[columns].sort_values(["strength", "class_a", "class_b"], ascending=[False, True, True],
                                      kind="stable").reset_index(drop=True)


def class_linkage(mass: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Average-linkage tree (scipy's ``Z``, (m-1, 4)) of ``classes`` under the distance
    ``1 - min(1, mass[a, b] + mass[b, a])``."""
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    classes = np.asarray(classes, dtype=np.int64)
    sub = mass[np.ix_(classes, classes)]
    distance = 1.0 - np.minimum(1.0, sub + sub.T)
    np.fill_diagonal(distance, 0.0)
    return linkage(squareform(distance, checks=False), method="average")


def overlapping_groups(mass: np.ndarray, pairs: pd.DataFrame, min_affinity: float = 0.2) -> pd.DataFrame:
    """Groups of overlapping classes among the classes of ``pairs``: clusters of :func:`class_linkage` cut at
    distance ``1 - min_affinity``, two classes or more. One row per class: ``group`` (0 = largest), ``class``.
    """
    from scipy.cluster.hierarchy import fcluster

    classes = np.unique(pairs[["class_a", "class_b"]].to_numpy().ravel())
    if len(classes) < 2:
        return pd.DataFrame({"group": pd.Series(dtype=int), "class": pd.Series(dtype=int)})
    cluster = fcluster(class_linkage(mass, classes), t=1.0 - min_affinity, criterion="distance")
    table = pd.DataFrame({"cluster": cluster, "class": classes})
    sizes = table.groupby("cluster")["class"].transform("size")
    table = table[sizes >= 2].assign(size=sizes[sizes >= 2])
    order = (table.groupby("cluster").agg(size=("size", "first"), first=("class", "min"))
             .sort_values(["size", "first"], ascending=[False, True]).index)
    table["group"] = table["cluster"].map({c: g for g, c in enumerate(order)})
    return table.sort_values(["group", "class"])[["group", "class"]].reset_index(drop=True)


def plot_dendrogram(mass: np.ndarray, classes: Sequence[int], names: Sequence[str], path,
                    min_affinity: float = 0.2) -> None:
    """Dendrogram of ``classes`` (horizontal: leaves, with names, on the right) with the group cut drawn, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from scipy.cluster.hierarchy import dendrogram

    from multilabelfy.analysis.plots import save_figure

    classes = list(classes)
    figure = Figure(figsize=(8, 1.5 + 0.22 * len(classes)))
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    if len(classes) >= 2:
        dendrogram(class_linkage(mass, classes), labels=[f"{names[c]} ({c})" for c in classes], ax=axes,
                   orientation="left", color_threshold=1.0 - min_affinity, above_threshold_color="#bbbbbb",
                   leaf_font_size=8)
        axes.axvline(1.0 - min_affinity, color="#c44e52", linestyle="--", linewidth=1, label="group cut")
        axes.legend(loc="lower left", fontsize=8)
    else:
        axes.text(0.5, 0.5, "fewer than two overlapping classes", ha="center", va="center")
    axes.set_xlabel("distance = 1 - (mass a→b + mass b→a)")
    axes.set_title("Overlapping classes (average linkage of the symmetrised confusion)")
    axes.spines[["top", "right"]].set_visible(False)
    save_figure(figure, path)
