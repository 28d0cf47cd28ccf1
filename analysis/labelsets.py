"""Multi-label sets: the one place that reads and writes them.

Formats read by :func:`read_label_sets`:

- ReaL style (ours, ``labels.json``; ReaL's ``real.json``): a JSON list in manifest order, each item a list
  of class indices; an empty list means the image has no valid label.
- keyed JSON: ``{image_id: [labels], ...}``, e.g. Multilabelfy's ImageNetV2 file
  ``{"<sha1>.jpeg": ["370", "356"], ...}``; labels are indices (int or digit string) or class ids.
- CSV with ``image_id`` and ``labels`` columns, labels separated by spaces or ``;`` (finalize's ``labels.csv``).
- ``imagenet-real``: ReaL's labels for the ImageNet-1k validation set as timm ships them.

A label set is always a sorted tuple of distinct class indices.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np

from multilabelfy.errors import UserError
from multilabelfy.fileio import write_json

from .manifest import Manifest, id_stem

if TYPE_CHECKING:
    from multilabelfy.catalogue import Catalogue

IMAGENET_REAL = "imagenet-real"
_SEPARATORS = re.compile(r"[\s;,|]+")
_IMAGENET_VAL = re.compile(r"ILSVRC2012_val_(\d{8})")


@dataclass
class LabelSets:
    """N images' label sets in one order.

    ``image_ids``: N ids. ``labels``: N sorted tuples of class indices (empty: no valid label).
    ``source``: the file they came from.
    """

    image_ids: list[str]
    labels: list[tuple[int, ...]]
    source: str
    # caches built on first use: treat a LabelSets as immutable
    _counts: np.ndarray | None = field(default=None, repr=False)
    _index: tuple[np.ndarray, int] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> np.ndarray:
        """Number of labels per image, int64 array (N,) (read-only)."""
        if self._counts is None:
            self._counts = np.fromiter((len(s) for s in self.labels), dtype=np.int64, count=len(self.labels))
            self._counts.flags.writeable = False
        return self._counts

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """All (image position, class index) memberships as two int64 arrays of equal length."""
        counts = self.counts()
        positions = np.repeat(np.arange(len(self.labels), dtype=np.int64), counts)
        classes = np.fromiter((c for s in self.labels for c in s), dtype=np.int64, count=int(counts.sum()))
        return positions, classes

    def contains(self, positions: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Whether class ``classes[i]`` is in the set of image ``positions[i]``; arrays of any equal shape.

        Vectorised: memberships are encoded once as sorted keys ``position * K + class`` and looked up with
        ``searchsorted``, so 100 models x 50,000 images is one call, not a Python loop.
        """
        positions = np.asarray(positions, dtype=np.int64)
        classes = np.asarray(classes, dtype=np.int64)
        if self._index is None:
            set_positions, set_classes = self.pairs()
            stride = 1 + int(set_classes.max(initial=0))
            self._index = (np.sort(set_positions * stride + set_classes), stride)
        keys, stride = self._index
        if not len(keys):
            return np.zeros(np.broadcast(positions, classes).shape, dtype=bool)
        # a class beyond the stride must not alias another image's key
        valid = (classes >= 0) & (classes < stride)
        query = positions * stride + np.where(valid, classes, 0)
        found = np.searchsorted(keys, query)
        return valid & (keys[np.minimum(found, len(keys) - 1)] == query)

    def by_id(self) -> dict[str, tuple[int, ...]]:
        return dict(zip(self.image_ids, self.labels))


def read_label_sets(path: str | os.PathLike, manifest: Manifest | None = None,
                    catalogue: Catalogue | None = None) -> LabelSets:
    """Read label sets from ``path`` (a format listed in the module docstring), in manifest order if given.

    ``catalogue`` maps class ids (e.g. ``'n01440764'``) to indices and bounds the indices; without it only
    indices are accepted, unbounded. Lists are positional: without a manifest their ids are ``'0', '1', ...``
    (``ILSVRC2012_val_<n>`` for ``imagenet-real``); with one, their length must match it, except when every
    manifest id is an ImageNet validation file (``.../ILSVRC2012_val_00000293``): then item ``n - 1`` belongs to
    file ``n`` (ReaL's order), whatever the manifest's order (class folders sort differently) or size (a subset).
    Keyed files are reordered to the manifest by :meth:`Manifest.positions_of`.

    Example::

        >>> sets = read_label_sets("labels.json", manifest)
        >>> sets.labels[:3]
        [(), (795, 970), (230, 231)]
    """
    if str(path) == IMAGENET_REAL:
        raw: object = json.loads(_real_json_path().read_text(encoding="utf-8"))
        source = f"{IMAGENET_REAL} ({_real_json_path()})"
        default_ids = [f"ILSVRC2012_val_{i + 1:08d}" for i in range(len(raw))]  # type: ignore[arg-type]
    else:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise UserError(f"label file {path} does not exist; pass labels.json, real.json or a keyed JSON/CSV")
        raw = _read_raw(path)
        default_ids = None

    parse = _label_parser(source, catalogue)
    if isinstance(raw, list):
        sets = [parse(item, f"item {i}") for i, item in enumerate(raw)]
        ids = default_ids or [str(i) for i in range(len(sets))]
        if manifest is not None:
            numbers = _imagenet_val_numbers(manifest.image_ids)
            if numbers is not None and numbers.max(initial=0) <= len(sets):
                sets = [sets[n - 1] for n in numbers]
            elif len(sets) != len(manifest):
                raise UserError(f"label file {source} lists {len(sets)} images but manifest {manifest.source} has "
                                f"{len(manifest)}; a list must follow the manifest's order one to one")
            ids = list(manifest.image_ids)
        return LabelSets(image_ids=ids, labels=sets, source=source)
    if isinstance(raw, dict):
        keys = list(raw)
        sets = [parse(raw[key], f"image {key!r}") for key in keys]
        if manifest is None:
            return LabelSets(image_ids=keys, labels=sets, source=source)
        ordered: list[tuple[int, ...]] = [()] * len(manifest)
        for position, labels in zip(manifest.positions_of(keys, f"label file {source}"), sets):
            ordered[position] = labels
        return LabelSets(image_ids=list(manifest.image_ids), labels=ordered, source=source)
    raise UserError(f"label file {source} holds neither a JSON list nor an object of image id -> labels")


def write_label_sets(path: str | os.PathLike, label_sets: LabelSets) -> None:
    """Write ReaL-style JSON (a list in ``label_sets`` order of index lists), atomically."""
    write_json(path, [list(s) for s in label_sets.labels], indent=None)


def _imagenet_val_numbers(image_ids: Sequence[str]) -> np.ndarray | None:
    """File numbers (1-based) when every id is a distinct ImageNet validation file name, else None."""
    matches = [_IMAGENET_VAL.fullmatch(id_stem(image_id)) for image_id in image_ids]
    if not matches or not all(matches):
        return None
    numbers = np.array([int(m.group(1)) for m in matches], dtype=np.int64)  # type: ignore[union-attr]
    return numbers if len(np.unique(numbers)) == len(numbers) and numbers.min() >= 1 else None


def _real_json_path() -> Path:
    """timm's bundled ReaL file, located without importing timm (and torch behind it)."""
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"{IMAGENET_REAL} needs timm installed; pass the path of real.json instead")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "_info" / "imagenet_real_labels.json"


def _read_raw(path: Path) -> object:
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"image_id", "labels"} <= set(reader.fieldnames):
                raise UserError(f"label file {path} needs 'image_id' and 'labels' columns (labels separated by "
                                "spaces or ';')")
            # a dict keeps the file's row order
            return {row["image_id"]: [t for t in _SEPARATORS.split(row["labels"] or "") if t] for row in reader}
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"label file {path} is not valid JSON ({error}); pass a JSON list or object, "
                        "or a CSV") from None


def _label_parser(source: str, catalogue: Catalogue | None) -> Callable[[object, str], tuple[int, ...]]:
    num_classes = len(catalogue) if catalogue is not None else None

    def parse(item: object, where: str) -> tuple[int, ...]:
        if not isinstance(item, list):
            raise UserError(f"label file {source}, {where}: expected a list of labels, got {item!r}")
        return tuple(sorted({_to_index(label, where) for label in item}))

    def _to_index(label: object, where: str) -> int:
        if isinstance(label, int) and not isinstance(label, bool):
            index = label
        elif isinstance(label, str) and label.strip().isdigit():
            index = int(label)
        elif isinstance(label, str) and catalogue is not None:
            try:
                return catalogue.index_of(label)
            except UserError as error:
                raise UserError(f"label file {source}, {where}: {error}") from None
        else:
            raise UserError(f"label file {source}, {where}: unknown label {label!r}; labels must be class "
                            "indices" + ("" if catalogue else " (pass --catalogue to map class ids)"))
        if index < 0 or (num_classes is not None and index >= num_classes):
            raise UserError(f"label file {source}, {where}: class index {index} is outside 0..{num_classes - 1} "
                            "of the catalogue; pass the matching --catalogue")
        return index

    return parse


def label_sets_from_lists(lists: Iterable[Sequence[int]], image_ids: Sequence[str] | None = None,
                          source: str = "<memory>") -> LabelSets:
    """Build :class:`LabelSets` from Python lists (tests, finalize): sorts and de-duplicates each set."""
    sets = [tuple(sorted(set(int(c) for c in s))) for s in lists]
    ids = list(image_ids) if image_ids is not None else [str(i) for i in range(len(sets))]
    if len(ids) != len(sets):
        raise ValueError(f"{len(ids)} image ids for {len(sets)} label sets")
    return LabelSets(image_ids=ids, labels=sets, source=source)
