"""The class catalogue: what each model output index means, in words people can check.

The built-in catalogue is ImageNet-1k as timm ships it (WordNet ids, lemmas as synonyms, definitions).
A team's own classes come from a CSV with an ``id`` column and optional ``index``, ``name``,
``synonyms`` (comma-separated) and ``definition`` columns.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from multilabelfy.errors import UserError

IMAGENET_1K = "imagenet-1k"


@dataclass(frozen=True)
class ClassInfo:
    index: int
    id: str
    synonyms: tuple[str, ...]
    definition: str = ""

    @property
    def name(self) -> str:
        """The first synonym: the short name shown to people."""
        return self.synonyms[0] if self.synonyms else self.id


class Catalogue:
    """An ordered list of classes with lookups by index and by id."""

    def __init__(self, classes: list[ClassInfo], source: str):
        if [c.index for c in classes] != list(range(len(classes))):
            raise UserError(f"catalogue {source}: class indices must be 0..{len(classes) - 1} without gaps")
        self.classes = classes
        self.source = source
        self._by_id = {c.id: c for c in classes}
        if len(self._by_id) != len(classes):
            raise UserError(f"catalogue {source}: class ids must be unique")

    def __len__(self) -> int:
        return len(self.classes)

    def __iter__(self) -> Iterator[ClassInfo]:
        return iter(self.classes)

    def __getitem__(self, index: int) -> ClassInfo:
        return self.classes[index]

    def by_id(self, class_id: str) -> ClassInfo:
        try:
            return self._by_id[class_id]
        except KeyError:
            raise UserError(f"class id {class_id!r} is not in catalogue {self.source}") from None

    def index_of(self, label: int | str) -> int:
        """Class index of ``label``: an index (int or digit string) or a class id (e.g. a WordNet id)."""
        if isinstance(label, str):
            label = label.strip()
            if label in self._by_id:
                return self._by_id[label].index
            if label.lstrip("-").isdigit():
                label = int(label)
        if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(self.classes):
            return label
        raise UserError(
            f"label {label!r} is neither a class index 0..{len(self.classes) - 1} nor a class id of catalogue "
            f"{self.source}; fix the label or pass the matching --catalogue"
        )


@lru_cache(maxsize=1)
def imagenet_1k() -> Catalogue:
    """ImageNet-1k in the standard class order, from timm's bundled WordNet files (no network)."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo(IMAGENET_1K)
    classes = []
    for index, synset in enumerate(info.label_names()):
        lemmas = info.label_name_to_description(synset, detailed=False)
        detailed = info.label_name_to_description(synset, detailed=True)
        definition = detailed[len(lemmas) + 2:] if detailed.startswith(lemmas + ": ") else ""
        synonyms = tuple(s.strip() for s in lemmas.split(",") if s.strip())
        classes.append(ClassInfo(index=index, id=synset, synonyms=synonyms, definition=definition))
    return Catalogue(classes, source=IMAGENET_1K)


def from_csv(path: str | os.PathLike) -> Catalogue:
    """Read a user catalogue: columns ``id`` (required), ``index``, ``name``, ``synonyms``, ``definition``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"catalogue file {path} does not exist; pass a CSV with an 'id' column or '{IMAGENET_1K}'")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "id" not in rows[0]:
        raise UserError(f"catalogue file {path} needs a header with an 'id' column and one row per class")
    classes = []
    for row_number, row in enumerate(rows):
        index_text = (row.get("index") or "").strip()
        if index_text and not index_text.isdigit():
            raise UserError(f"catalogue file {path}, row {row_number + 2}: index {index_text!r} is not a number")
        synonyms = [s.strip() for s in (row.get("synonyms") or "").split(",") if s.strip()]
        name = (row.get("name") or "").strip()
        if name and name not in synonyms:
            synonyms.insert(0, name)
        classes.append(ClassInfo(
            index=int(index_text) if index_text else row_number,
            id=row["id"].strip(),
            synonyms=tuple(synonyms) or (row["id"].strip(),),
            definition=(row.get("definition") or "").strip(),
        ))
    classes.sort(key=lambda c: c.index)
    return Catalogue(classes, source=str(path))


def load_catalogue(spec: str | os.PathLike | None = None) -> Catalogue:
    """``None`` or ``'imagenet-1k'`` for the built-in catalogue, else the path of a user CSV."""
    if spec is None or str(spec) == IMAGENET_1K:
        return imagenet_1k()
    return from_csv(spec)
