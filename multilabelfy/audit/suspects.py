"""Label-issue ranking from model probabilities (confident learning, Northcutt et al. 2021, as in cleanlab).

Each image has an original label ``i`` and the model's probabilities ``p``. Its **self-confidence** is ``p[i]``;
class ``j``'s **threshold** ``t[j]`` is the mean self-confidence of the images labelled ``j`` (how sure the model
usually is about a correct-looking image of ``j``). A class is *confident* for an image when ``p[j] >= t[j]``.
Then an image is

- ``wrong``: its label is not confident but another class is (cleanlab's off-diagonal of the confident joint);
- ``incomplete``: its label is confident and so is another class (a second object or an overlapping class: the
  multi-label case);
- ``unsure``: no class is confident;
- ``ok``: only its label is confident.

The **margin** is ``top-1 probability - p[i]`` (0 when the label is the top-1). The ranking puts ``wrong`` first,
then ``incomplete``, ``unsure``, ``ok``; within a kind by margin (largest first), then self-confidence (lowest
first).

Top-k only: the proposals Parquet keeps the k most probable classes. A label outside the top-k has
``p[i] <= min(p_k, 1 - sum(top-k probs))`` (it is at most the k-th probability and at most the mass left over);
we use that upper bound as its self-confidence, so such an image is ranked no higher than it deserves (its
margin is a lower bound) and ``label_in_topk`` is False. Classes outside an image's top-k are never confident
for it. A class with fewer than ``min_images`` labelled images gets the mean of the other thresholds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from multilabelfy.errors import UserError
from multilabelfy.fileio import atomic_path

KINDS = ("wrong", "incomplete", "unsure", "ok")  # ranking order
RANKING_SUFFIXES = (".csv", ".parquet")


def topk_arrays(proposals: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The proposals' list columns as arrays: ``(indices int64 (N, k), probs float64 (N, k))``."""
    if not len(proposals):
        return np.zeros((0, 1), np.int64), np.zeros((0, 1), np.float64)
    lengths = proposals["topk_indices"].map(len)
    if lengths.nunique() != 1:
        raise UserError("the proposals hold different numbers of top-k classes per image; re-run `propose`")
    return (np.stack(proposals["topk_indices"].to_numpy()).astype(np.int64),
            np.stack(proposals["topk_probs"].to_numpy()).astype(np.float64))


def self_confidence(indices: np.ndarray, probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probability of each image's own label, from top-k only.

    ``indices``/``probs``: (N, k) top-k classes and probabilities, most probable first; ``labels``: (N,) class
    indices. Returns ``(p_label float (N,), in_topk bool (N,))``; outside the top-k ``p_label`` is the upper bound
    ``min(p_k, 1 - sum(probs))``.

    Example::

        >>> self_confidence(np.array([[3, 1]]), np.array([[0.7, 0.2]]), np.array([5]))
        (array([0.1]), array([False]))
    """
    hit = indices == np.asarray(labels)[:, None]
    in_topk = hit.any(axis=1)
    bound = np.clip(np.minimum(probs[:, -1], 1.0 - probs.sum(axis=1)), 0.0, None)
    return np.where(in_topk, (probs * hit).sum(axis=1), bound), in_topk


def class_thresholds(labels: np.ndarray, p_label: np.ndarray, num_classes: int, min_images: int = 1) -> np.ndarray:
    """Per-class threshold ``t[j]``: mean self-confidence of the images labelled ``j``, float (num_classes,).

    Classes with fewer than ``min_images`` images take the mean of the other classes' thresholds (NaN when no
    class has enough).

    Example: labels ``[0, 0, 1]``, self-confidences ``[0.9, 0.5, 0.4]`` -> ``[0.7, 0.4]``.
    """
    counts = np.bincount(labels, minlength=num_classes)
    sums = np.bincount(labels, weights=p_label, minlength=num_classes)
    enough = counts >= max(min_images, 1)
    thresholds = np.full(num_classes, np.nan)
    thresholds[enough] = sums[enough] / counts[enough]
    if enough.any():
        thresholds[~enough] = thresholds[enough].mean()
    return thresholds


def rank_label_issues(indices: np.ndarray, probs: np.ndarray, labels: np.ndarray, num_classes: int,
                      image_ids: Sequence[str] | None = None, min_images: int = 1) -> pd.DataFrame:
    """Rank images by how likely their original label is wrong or incomplete (module docstring: the rules).

    ``indices``/``probs``: (N, k) top-k of each image; ``labels``: (N,) original class indices, negative where
    unknown (those images are left out); ``image_ids``: N ids (default ``'0'``, ``'1'``, ...).
    Returns one row per labelled image, most suspicious first: ``rank`` (1-based), ``position`` (row in the
    input), ``image_id``, ``label``, ``label_prob`` (self-confidence), ``label_in_topk``, ``threshold``
    (``t[label]``), ``top1``, ``top1_prob``, ``margin``, ``suggested`` (most probable confident class other
    than the label, -1 if none), ``suggested_prob``, ``kind`` (``wrong``/``incomplete``/``unsure``/``ok``).

    Example::

        >>> rank_label_issues(np.array([[1, 0], [0, 1], [0, 1]]), np.array([[.9, .1], [.8, .2], [.7, .3]]),
        ...                   np.array([0, 0, 0]), num_classes=2)[["image_id", "kind", "suggested"]]
          image_id   kind  suggested
        0        0  wrong          1
        1        2     ok         -1
        2        1     ok         -1
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(indices):
        raise ValueError(f"{len(labels)} labels for {len(indices)} images")
    ids = np.asarray(list(image_ids) if image_ids is not None else [str(i) for i in range(len(labels))], dtype=object)
    keep = labels >= 0
    positions = np.flatnonzero(keep)
    indices, probs, labels, ids = indices[keep], probs[keep], labels[keep], ids[keep]

    p_label, in_topk = self_confidence(indices, probs, labels)
    thresholds = class_thresholds(labels, p_label, num_classes, min_images)
    confident = probs >= thresholds[indices]  # NaN thresholds compare False
    label_ok = p_label >= thresholds[labels]
    other = confident & (indices != labels[:, None])
    has_other = other.any(axis=1)
    first_other = other.argmax(axis=1)  # top-k is sorted, so the first confident other class is the most probable
    rows = np.arange(len(labels))
    kind = np.select([~label_ok & has_other, label_ok & has_other, ~label_ok], [0, 1, 2], default=3)
    table = pd.DataFrame({
        "position": positions,
        "image_id": ids,
        "label": labels,
        "label_prob": p_label,
        "label_in_topk": in_topk,
        "threshold": thresholds[labels],
        "top1": indices[:, 0],
        "top1_prob": probs[:, 0],
        "margin": np.clip(probs[:, 0] - p_label, 0.0, None),
        "suggested": np.where(has_other, indices[rows, first_other], -1),
        "suggested_prob": np.where(has_other, probs[rows, first_other], 0.0),
        "kind_order": kind,
    })
    table = table.sort_values(["kind_order", "margin", "label_prob", "position"],
                              ascending=[True, False, True, True], kind="stable").reset_index(drop=True)
    table["kind"] = pd.Categorical.from_codes(table.pop("kind_order"), KINDS)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table


def issue_counts(ranking: pd.DataFrame) -> dict[str, int]:
    """How many images of each kind: ``{'wrong': n, 'incomplete': n, 'unsure': n, 'ok': n}``."""
    counts = ranking["kind"].astype(str).value_counts()
    return {kind: int(counts.get(kind, 0)) for kind in KINDS}


def priority_image_ids(ranking: pd.DataFrame, top: int | None = None,
                       kinds: Sequence[str] = ("wrong", "incomplete")) -> list[str]:
    """Image ids to annotate first: the ranking's images of ``kinds``, in rank order, at most ``top`` of them.

    ``ranking``: a table from :func:`rank_label_issues` or :func:`read_ranking`. ``create-project`` can put
    these first (or import only these) as a priority batch. Example: ``priority_image_ids(ranking, 500)``.
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise UserError(f"unknown suspect kind {unknown[0]!r}; choose from {', '.join(KINDS)}")
    chosen = ranking[ranking["kind"].astype(str).isin(kinds)].sort_values("rank", kind="stable")
    ids = chosen["image_id"].astype(str).tolist()
    return ids if top is None else ids[:max(top, 0)]


def order_by_priority(image_ids: Sequence[str], ranking: pd.DataFrame, top: int | None = None,
                      kinds: Sequence[str] = ("wrong", "incomplete")) -> list[str]:
    """``image_ids`` reordered so the priority images (:func:`priority_image_ids`) come first, in rank order;
    the rest keep their order. Priority ids not in ``image_ids`` are ignored."""
    wanted = set(image_ids)
    first = [i for i in priority_image_ids(ranking, top, kinds) if i in wanted]
    chosen = set(first)
    return first + [i for i in image_ids if i not in chosen]


def prioritise(proposals: pd.DataFrame, ranking: pd.DataFrame, top: int | None = None,
               kinds: Sequence[str] = ("wrong", "incomplete")) -> pd.DataFrame:
    """Proposals rows (any table with ``image_id``) with the ranking's suspects first, in rank order.

    ``top`` ``None``: every row, suspects first, the rest in their order; ``top`` N: only the first N suspects
    (a priority batch). Raises ``UserError`` when the ranking names none of these images (another dataset).
    """
    ids = proposals["image_id"].astype(str).tolist()
    first = order_by_priority(ids, ranking, top, kinds)
    chosen = set(priority_image_ids(ranking, top, kinds))
    if chosen and not chosen & set(ids):
        raise UserError("the priority ranking names none of the proposals' images; pass the ranking made from "
                        "these proposals (`multilabelfy audit suspects`)")
    if top is not None:
        first = [i for i in first if i in chosen]
    position = {image_id: row for row, image_id in enumerate(ids)}
    return proposals.iloc[[position[i] for i in first]].reset_index(drop=True)


def add_class_names(ranking: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """A copy with ``label_name``, ``top1_name`` and ``suggested_name`` columns beside the class indices."""
    table = ranking.copy()
    for column in ("label", "top1", "suggested"):
        table.insert(table.columns.get_loc(column) + 1, f"{column}_name",
                     [names[c] if 0 <= c < len(names) else "" for c in table[column]])
    return table


def write_ranking(ranking: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the ranking as CSV or Parquet (by suffix), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in RANKING_SUFFIXES:
        raise UserError(f"ranking file {path} must end in .csv or .parquet")
    table = ranking.assign(kind=ranking["kind"].astype(str))
    if suffix == ".csv":
        from multilabelfy.analysis.report import write_csv

        write_csv(table, path)
    else:
        with atomic_path(path) as tmp:
            table.to_parquet(tmp, index=False)


def read_ranking(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ranking written by ``multilabelfy audit suspects`` (CSV or Parquet)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"ranking file {path} does not exist; make it with `multilabelfy audit suspects`")
    try:
        table = (pd.read_parquet(path) if path.suffix.lower() == ".parquet"
                 else pd.read_csv(path, dtype={"image_id": str}, keep_default_na=False))
    except Exception as error:  # pandas/pyarrow raise many types for a bad file
        raise UserError(f"ranking file {path} could not be read ({type(error).__name__}); "
                        "pass a file from `multilabelfy audit suspects`") from None
    missing = {"rank", "image_id", "kind"} - set(table.columns)
    if missing:
        raise UserError(f"ranking file {path} lacks the columns {', '.join(sorted(missing))}; "
                        "pass a file from `multilabelfy audit suspects`")
    return table
