"""The manifest as the analysis sees it: image ids in order, original labels, image paths.

Every other table in ``analysis`` (label sets, predictions) is aligned to a manifest's order, either by
position (plain lists and arrays) or by image id (keyed files). The id matching rules live here, once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

import numpy as np

from multilabelfy.errors import UserError

UNKNOWN = -1  # original label of an image whose label is not known
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

_ID_COLUMNS = ("image_id", "id")
_LABEL_COLUMNS = ("label", "original_label", "class")
_IMAGE_COLUMNS = ("image", "path", "image_path", "file", "filename", "url")


def id_stem(image_id: str) -> str:
    """The file name of ``image_id`` without folders and image extension: ``'370/ab12.jpeg'`` -> ``'ab12'``.

    Published label files key images by file name (``'<sha1>.jpeg'``) while our ids are relative paths
    without extension (``'370/<sha1>'``); both reduce to the same stem.
    """
    name = PurePosixPath(image_id.replace("\\", "/")).name
    stem, ext = os.path.splitext(name)
    return stem if ext.lower() in IMAGE_EXTENSIONS else name


@dataclass
class Manifest:
    """Images in dataset order.

    ``image_ids``: N stable ids. ``labels``: int64 array (N,) of original class indices, ``UNKNOWN`` (-1)
    where not known. ``images``: N paths or URLs (``None`` where not known). ``source``: where it came from.
    """

    image_ids: list[str]
    labels: np.ndarray
    images: list[str | None]
    source: str
    _lookup: tuple[dict[str, int], dict[str, int]] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.image_ids)

    def positions_of(self, keys: Sequence[str], what: str) -> np.ndarray:
        """Manifest positions (int64 array, same length as ``keys``) of image ids found in file ``what``.

        A key matches an id exactly, or else by :func:`id_stem`. Every key must match one image and every
        image must be matched once; otherwise a ``UserError`` names ``what`` and an example.
        """
        if self._lookup is None:
            exact = {image_id: i for i, image_id in enumerate(self.image_ids)}
            stems: dict[str, int] = {}
            for i, image_id in enumerate(self.image_ids):
                # an ambiguous stem (same file name in two folders) may only match exactly
                stems[id_stem(image_id)] = -1 if id_stem(image_id) in stems else i
            self._lookup = (exact, stems)
        exact, stems = self._lookup
        positions = np.fromiter(
            (exact.get(key, stems.get(id_stem(key), -1)) for key in keys), dtype=np.int64, count=len(keys))
        if (positions < 0).any():
            missing = keys[int(np.flatnonzero(positions < 0)[0])]
            raise UserError(
                f"{what}: {int((positions < 0).sum())} image ids are not in manifest {self.source} "
                f"(first: {missing!r}); pass the manifest these labels belong to")
        if len(np.unique(positions)) != len(positions) or len(positions) != len(self):
            raise UserError(
                f"{what}: has {len(np.unique(positions))} distinct images of the {len(self)} in manifest "
                f"{self.source} (duplicates or images missing); give one entry per manifest image")
        return positions


def read_manifest(path: str | os.PathLike, index_of: Callable[[str], int] | None = None) -> Manifest:
    """Read a CSV or Parquet manifest (our proposals Parquet also works: it carries ``position``).

    Columns: an id (``image_id`` or ``id``; else the image path serves as id), an optional original label
    (``label``/``original_label``/``class``: a class index or a class id such as a WordNet id, mapped by
    ``index_of``, e.g. ``load_catalogue().index_of``), an optional image path or URL (``image``/``path``/...;
    relative paths are taken relative to the manifest's folder).

    Example::

        image_id,label,image
        ILSVRC2012_val_00000001,n01751748,val/ILSVRC2012_val_00000001.JPEG
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise UserError(f"manifest {path} does not exist; pass the CSV or Parquet manifest of the dataset")
    try:
        if path.suffix.lower() == ".parquet":
            table = pd.read_parquet(path)
            if "position" in table.columns:
                table = table.sort_values("position", kind="stable")
        else:
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, OSError) as error:
        raise UserError(f"manifest {path} cannot be read ({error}); pass a CSV or Parquet file") from None
    columns = {c.lower().strip(): c for c in table.columns}
    id_col = next((columns[c] for c in _ID_COLUMNS if c in columns), None)
    image_col = next((columns[c] for c in _IMAGE_COLUMNS if c in columns), None)
    label_col = next((columns[c] for c in _LABEL_COLUMNS if c in columns), None)
    if id_col is None and image_col is None:
        raise UserError(f"manifest {path} needs an 'image_id' or 'image' column (header row), one row per image")
    images: list[str | None] = [None] * len(table)
    if image_col is not None:
        images = [_resolve(str(v), path.parent) if _present(v) else None for v in table[image_col]]
    ids = [str(v) for v in table[id_col if id_col is not None else image_col]]
    labels = np.full(len(table), UNKNOWN, dtype=np.int64)
    if label_col is not None:
        labels = _label_indices(table[label_col].tolist(), index_of, path)
    return Manifest(image_ids=ids, labels=labels, images=images, source=str(path))


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) and str(value).strip() != ""


def _resolve(image: str, folder: Path) -> str:
    if "://" in image or os.path.isabs(image):
        return image
    return str((folder / image).resolve())


def _label_indices(values: list, index_of: Callable[[str], int] | None, path: Path) -> np.ndarray:
    """Map each distinct label text once (50,000 rows hold at most a few thousand distinct labels)."""
    texts = ["" if not _present(v) else str(int(v)) if isinstance(v, (int, float)) else str(v).strip()
             for v in values]
    mapping: dict[str, int] = {"": UNKNOWN}
    for row, text in enumerate(texts):
        if text in mapping:
            continue
        if index_of is not None:
            try:
                mapping[text] = index_of(text)
            except UserError as error:
                raise UserError(f"manifest {path}, row {row + 2}: {error}") from None
        elif text.isdigit():
            mapping[text] = int(text)
        else:
            raise UserError(f"manifest {path}, row {row + 2}: label {text!r} is not a class index; "
                            "pass --catalogue to map class ids")
    return np.array([mapping[t] for t in texts], dtype=np.int64)
