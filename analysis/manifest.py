"""The manifest as the analysis sees it: image ids in order, original labels, image paths.

Every other table in ``analysis`` (label sets, predictions) is aligned to a manifest's order, either by
position (plain lists and arrays) or by image id (keyed files). The id matching rules live here, once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Sequence

import numpy as np

from multilabelfy.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

    from multilabelfy.catalogue import Catalogue

UNKNOWN = -1  # original label of an image whose label is not known

_ID_COLUMNS = ("image_id", "id")
_LABEL_COLUMNS = ("label", "original_label")


def id_stem(image_id: str) -> str:
    """The file name of ``image_id`` without folders and image extension: ``'370/ab12.jpeg'`` -> ``'ab12'``.

    Published label files key images by file name (``'<sha1>.jpeg'``) while our ids are relative paths
    without extension (``'370/<sha1>'``); both reduce to the same stem.
    """
    from multilabelfy.dataset import IMAGE_EXTENSIONS  # here, not at the top: dataset imports torch

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

    def positions_of(self, keys: Sequence[str], what: str, allow_missing: bool = False) -> np.ndarray:
        """Manifest positions (int64 array, same length as ``keys``) of image ids found in file ``what``.

        A key matches an id exactly, or else by :func:`id_stem`. Every key must match one image, no image
        twice, and (unless ``allow_missing``) every image must be matched; otherwise a ``UserError`` names
        ``what`` and an example.
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
        if len(np.unique(positions)) != len(positions) or (len(positions) != len(self) and not allow_missing):
            raise UserError(
                f"{what}: has {len(np.unique(positions))} distinct images of the {len(self)} in manifest "
                f"{self.source} (duplicates or images missing); give one entry per manifest image")
        return positions


def read_manifest(path: str | os.PathLike, catalogue: Catalogue | None = None) -> Manifest:
    """Read the dataset's images in order with their original labels (mapped by ``catalogue.index_of``).

    ``path`` is anything ``multilabelfy.dataset.read_dataset`` reads (a folder of class subfolders, or a
    CSV/Parquet manifest with an ``image`` column and optional ``id`` and ``label``), or a table with an
    ``image_id`` column (or ``id`` and no ``image``): ``label`` (a class index or a class id such as a WordNet
    id; empty = unknown) and, as in our proposals Parquet, ``image`` (absolute path or URL) are optional.
    Without a catalogue only class indices are accepted as labels.

    Example (ids and labels only)::

        image_id,label
        ILSVRC2012_val_00000001,n01751748
    """
    path = Path(path)
    columns = _columns(path) if path.is_file() else set()
    if path.is_dir() or ("image" in columns and "image_id" not in columns):
        from multilabelfy.dataset import read_dataset

        records = read_dataset(path, catalogue if catalogue is not None else _IndicesOnly())
        return Manifest(image_ids=[r.image_id for r in records],
                        labels=np.array([UNKNOWN if r.label is None else r.label for r in records], dtype=np.int64),
                        images=[r.image for r in records], source=str(path))
    if not path.is_file():
        raise UserError(f"manifest {path} does not exist; pass the dataset folder or its CSV/Parquet manifest")
    table = _read_table(path)
    id_col = next((c for c in _ID_COLUMNS if c in columns), None)
    label_col = next((c for c in _LABEL_COLUMNS if c in columns), None)
    if id_col is None:
        raise UserError(f"manifest {path} needs an 'image' or an 'image_id' column (header row), one row per image")
    labels = np.full(len(table), UNKNOWN, dtype=np.int64)
    if label_col is not None:
        labels = _label_indices(table[label_col].tolist(), catalogue, path)
    images: list[str | None] = [None] * len(table)
    if "image" in columns:  # e.g. our proposals Parquet; relative paths are relative to the manifest's folder
        images = [None if not _present(v) else str(v) if "://" in str(v) else str((path.parent / str(v)).resolve())
                  for v in table["image"]]
    return Manifest(image_ids=[str(v) for v in table[id_col]], labels=labels, images=images, source=str(path))


class _IndicesOnly:
    """Stands in for a catalogue when none is given: class indices pass, class ids are refused."""

    source = "(none: pass --catalogue to map class ids)"

    def index_of(self, label: int | str) -> int:
        text = str(label).strip()
        if text.isdigit():
            return int(text)
        raise UserError(f"label {text!r} is not a class index; pass --catalogue to map class ids")


def _read_table(path: Path, header_only: bool = False) -> "pd.DataFrame":
    import pandas as pd

    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            if header_only:
                return pd.DataFrame(columns=pq.read_schema(path).names)
            table = pd.read_parquet(path)
            return table.sort_values("position", kind="stable") if "position" in table.columns else table
        return pd.read_csv(path, dtype=str, keep_default_na=False, nrows=0 if header_only else None)
    except (ValueError, OSError) as error:
        raise UserError(f"manifest {path} cannot be read ({error}); pass a CSV or Parquet file") from None


def _columns(path: Path) -> set[str]:
    return {str(c) for c in _read_table(path, header_only=True).columns}


def _present(value: object) -> bool:
    import pandas as pd

    return not pd.isna(value) and str(value).strip() != ""


def _label_indices(values: list, catalogue: Catalogue | None, path: Path) -> np.ndarray:
    """Map each distinct label text once (50,000 rows hold at most a few thousand distinct labels)."""
    texts = ["" if not _present(v) else str(int(v)) if isinstance(v, (int, float)) else str(v).strip()
             for v in values]
    mapping: dict[str, int] = {"": UNKNOWN}
    index_of = (catalogue if catalogue is not None else _IndicesOnly()).index_of
    for row, text in enumerate(texts):
        if text not in mapping:
            try:
                mapping[text] = index_of(text)
            except UserError as error:
                raise UserError(f"manifest {path}, row {row + 1}: {error}") from None
    return np.array([mapping[t] for t in texts], dtype=np.int64)
