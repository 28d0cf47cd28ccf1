"""Model predictions as top-k class indices per image, for any number of models.

Formats read by :func:`read_predictions`:

- ``.npy``: int array (N, k) of top-k class indices in manifest order, most probable first (the format
  ImageNetV2's authors publish); a 1-D array is top-1 only.
- ``.csv``: one row per image in manifest order, either with an ``image_id`` column (then rows are matched
  to the manifest by id) or without; the prediction is a ``topk_indices`` column of space-separated indices
  or the remaining columns (``top1, top2, ...``) in rank order. A header-less CSV of indices also works.
- ``.parquet``: our proposals file (``position``, ``image_id``, ``topk_indices``; the model name in the key-value
  metadata ``multilabelfy.model``).

Files with image ids may lack rows (proposals skip unreadable images): those images get ``MISSING`` (-1)
predictions, which never match a label, and a warning says how many.

A model's name is ``NAME`` from a ``NAME=PATH`` argument, else the Parquet metadata, else the file's stem.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multilabelfy.errors import UserError

from .manifest import Manifest

MODEL_METADATA_KEY = b"multilabelfy.model"
MISSING = -1  # the prediction of an image a keyed file has no row for (it counts as wrong)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Predictions:
    """One model's predictions. ``topk``: int64 array (N, k), manifest order, most probable first."""

    name: str
    topk: np.ndarray
    source: str


def parse_spec(spec: str) -> tuple[str | None, Path]:
    """``'resnet50=preds/r50.npy'`` -> ``('resnet50', Path('preds/r50.npy'))``; a bare path -> ``(None, path)``."""
    name, sep, path = spec.partition("=")
    if sep and name and not os.path.exists(spec):
        return name.strip(), Path(path)
    return None, Path(spec)


def read_predictions(spec: str, manifest: Manifest | None = None, num_classes: int | None = None) -> Predictions:
    """Read one model's top-k predictions from ``spec`` (``PATH`` or ``NAME=PATH``), aligned to ``manifest``.

    Raises ``UserError`` for a missing file, an unknown format, a row count that differs from the
    manifest's, image ids the manifest lacks, or class indices outside ``0..num_classes-1``.

    Example::

        >>> p = read_predictions("resnet50=r50_top5.npy", manifest)
        >>> p.topk.shape
        (10000, 5)
    """
    name, path = parse_spec(spec)
    if not path.is_file():
        raise UserError(f"prediction file {path} does not exist; pass .npy, .csv or proposals .parquet files")
    suffix = path.suffix.lower()
    ids: list[str] | None = None
    if suffix == ".npy":
        try:
            topk = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as error:
            raise UserError(f"prediction file {path} is not a NumPy array ({error})") from None
    elif suffix == ".csv":
        ids, topk = _read_csv(path)
    elif suffix == ".parquet":
        ids, topk, stored_name = _read_parquet(path)
        name = name or stored_name
    else:
        raise UserError(f"prediction file {path} has an unknown format; use .npy (N, k), .csv or .parquet")

    topk = np.asarray(topk)
    if topk.ndim == 1:
        topk = topk[:, None]
    if topk.ndim != 2 or topk.shape[1] == 0 or not np.issubdtype(topk.dtype, np.integer):
        raise UserError(f"prediction file {path}: expected integer class indices of shape (N, k), "
                        f"got {topk.dtype} {topk.shape}")
    topk = topk.astype(np.int64, copy=False)
    if len(topk) and (topk.min() < 0 or (num_classes is not None and topk.max() >= num_classes)):
        raise UserError(f"prediction file {path}: class indices span {topk.min()}..{topk.max()}, outside "
                        f"0..{(num_classes or 0) - 1}; pass the matching --catalogue")
    if manifest is not None:
        if ids is not None:
            aligned = np.full((len(manifest), topk.shape[1]), MISSING, dtype=np.int64)
            aligned[manifest.positions_of(ids, f"prediction file {path}", allow_missing=True)] = topk
            if len(ids) < len(manifest):
                log.warning("prediction file %s has no row for %d of %d images (unreadable images?); "
                            "they count as wrong", path, len(manifest) - len(ids), len(manifest))
            topk = aligned
        elif len(topk) != len(manifest):
            raise UserError(f"prediction file {path} has {len(topk)} rows but manifest {manifest.source} has "
                            f"{len(manifest)} images; predictions must follow the manifest's order one to one")
    return Predictions(name=name or path.stem, topk=topk, source=str(path))


def _read_csv(path: Path) -> tuple[list[str] | None, np.ndarray]:
    import pandas as pd

    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        if all(str(c).strip().lstrip("-").isdigit() for c in table.columns):
            table = pd.read_csv(path, dtype=str, keep_default_na=False, header=None)
    except (ValueError, OSError) as error:
        raise UserError(f"prediction file {path} cannot be read as CSV ({error})") from None
    ids = table.pop("image_id").tolist() if "image_id" in table.columns else None
    try:
        if "topk_indices" in table.columns:
            rows = [text.split() for text in table["topk_indices"]]
            if len({len(r) for r in rows}) > 1:
                raise ValueError("rows have different numbers of indices")
            topk = np.array(rows, dtype=np.int64)
        else:
            topk = table.to_numpy().astype(np.int64)
    except ValueError as error:
        raise UserError(f"prediction file {path}: predictions must be integer class indices ({error})") from None
    return ids, topk


def _read_parquet(path: Path) -> tuple[list[str] | None, np.ndarray, str | None]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=None)
    except Exception as error:  # pyarrow raises several types for a bad file
        raise UserError(f"prediction file {path} is not a readable Parquet file ({error})") from None
    if "topk_indices" not in table.column_names:
        raise UserError(f"prediction file {path} has no 'topk_indices' column; pass a proposals Parquet")
    metadata = table.schema.metadata or {}
    name = metadata[MODEL_METADATA_KEY].decode() if MODEL_METADATA_KEY in metadata else None
    if "position" in table.column_names:
        table = table.sort_by("position")
    column = table.column("topk_indices").combine_chunks()
    lengths = column.value_lengths().to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths != lengths[0]).any():
        raise UserError(f"prediction file {path}: rows hold different numbers of top-k indices")
    k = int(lengths[0]) if len(lengths) else 1
    topk = column.flatten().to_numpy(zero_copy_only=False).astype(np.int64).reshape(len(column), k)
    ids = table.column("image_id").to_pylist() if "image_id" in table.column_names else None
    return ids, topk, name
