"""Datasets: which images, in which order, with which original label.

Two layouts are read:

- a folder of class subfolders named by class id (WordNet ids such as ``n02123045``) or class index
  (``0``..``999`` as ImageNetV2 ships them); images directly in the root are unlabelled. Order: class folders
  (numerically when they are all numbers), then file names. Image id: the path relative to the root, without its
  extension (``n02123045/ILSVRC2012_val_00000001``).
- a CSV or Parquet manifest with an ``image`` column (a path, relative to the manifest's folder or absolute, or an
  http(s) URL), an optional ``label`` column (class index or class id; empty = unknown) and an optional ``id``
  column. Order: the manifest's rows. Image id: the ``id`` column, else the ``image`` value as written.

Labels go through the catalogue, so a label it does not know stops the run before any work is done.
Images are opened with PIL and converted to RGB; a failure is reported per image, never raised.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd
import PIL.Image
import torch

from multilabelfy.catalogue import Catalogue
from multilabelfy.errors import UserError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
MANIFEST_SUFFIXES = (".csv", ".parquet")
URL_TIMEOUT_S = 30


@dataclass(frozen=True)
class ImageRecord:
    position: int  # row number in the dataset's order (the order of every later output)
    image_id: str  # stable id, unique within the dataset
    image: str  # absolute path or URL
    label: int | None  # original label as a class index; None when unknown


def read_dataset(spec: str | os.PathLike, catalogue: Catalogue) -> list[ImageRecord]:
    """The records of a class-folder dataset or a CSV/Parquet manifest, in dataset order."""
    path = Path(spec)
    if path.is_dir():
        records = _read_folder(path, catalogue)
    elif path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        records = _read_manifest(path, catalogue)
    elif path.exists():
        raise UserError(f"dataset {path} is neither a folder nor a .csv/.parquet manifest")
    else:
        raise UserError(f"dataset {path} does not exist; pass a folder of class subfolders or a .csv/.parquet manifest")
    if not records:
        raise UserError(f"dataset {path} holds no images (extensions {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return records


def _folder_order(name: str) -> tuple:
    # ImageNetV2's folders 0..999 sort as numbers, not as strings (2 before 10)
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
        key=lambda p: p.relative_to(folder).as_posix(),
    )


def _read_folder(root: Path, catalogue: Catalogue) -> list[ImageRecord]:
    root = root.resolve()
    found: list[tuple[Path, int | None]] = [
        (p, None) for p in sorted(root.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    ]
    for folder in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: _folder_order(p.name)):
        files = _image_files(folder)
        if not files:
            continue
        try:
            label = catalogue.index_of(folder.name)
        except UserError:
            raise UserError(
                f"class folder {folder} is neither a class id nor an index of catalogue {catalogue.source}; "
                "rename it or pass the matching --catalogue"
            ) from None
        found.extend((p, label) for p in files)
    return [
        ImageRecord(position=i, image_id=p.relative_to(root).with_suffix("").as_posix(), image=str(p), label=label)
        for i, (p, label) in enumerate(found)
    ]


def _read_manifest(path: Path, catalogue: Catalogue) -> list[ImageRecord]:
    try:
        table = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path, dtype=str)
    except Exception as error:
        raise UserError(f"manifest {path} could not be read ({type(error).__name__}: {error})") from None
    if "image" not in table.columns:
        raise UserError(f"manifest {path} needs an 'image' column (path or URL); it has {', '.join(map(str, table.columns))}")
    records = []
    for position, row in enumerate(table.itertuples(index=False)):
        row = row._asdict()
        line = f"manifest {path}, row {position + 1}"
        image = _text(row["image"])
        if not image:
            raise UserError(f"{line}: the 'image' column is empty")
        label_text = _text(row.get("label"))
        try:
            label = catalogue.index_of(label_text) if label_text else None
        except UserError as error:
            raise UserError(f"{line}: {error}") from None
        records.append(ImageRecord(
            position=position,
            image_id=_text(row.get("id")) or image,
            image=image if _is_url(image) else str((path.parent / image).resolve()),
            label=label,
        ))
    seen: set[str] = set()
    for record in records:
        if record.image_id in seen:
            raise UserError(f"manifest {path}: image id {record.image_id!r} occurs twice; ids must be unique")
        seen.add(record.image_id)
    return records


def _text(value: object) -> str:
    """A manifest cell as stripped text; empty for missing values (None, NaN, NA)."""
    if value is None or pd.isna(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a Parquet label column of floats (because of nulls) holds 3.0 for class 3
    return str(value).strip()


def _is_url(image: str) -> bool:
    return image.startswith(("http://", "https://"))


def load_image(image: str) -> PIL.Image.Image:
    """Open a path or http(s) URL as a fully decoded RGB image. Raises on unreadable or corrupt data."""
    if _is_url(image):
        import requests

        response = requests.get(image, timeout=URL_TIMEOUT_S)
        response.raise_for_status()
        source: str | io.BytesIO = io.BytesIO(response.content)
    else:
        source = image
    with PIL.Image.open(source) as opened:
        return opened.convert("RGB")  # convert() decodes everything, so truncated files fail here, not later


class ImageDataset(torch.utils.data.Dataset):
    """Records as ``(position, pixels or None, label or -1, error or "")`` items for a DataLoader.

    A failure to load or transform an image becomes its error text (``"OSError: ..."``) instead of an exception,
    so one corrupt file does not stop a run; ``collate_images`` sets such items aside.
    """

    def __init__(self, records: Sequence[ImageRecord], transform):
        self.records = records
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, int, str]:
        record = self.records[index]
        label = -1 if record.label is None else record.label
        try:
            return record.position, self.transform(load_image(record.image)), label, ""
        except Exception as error:  # any decoder/transform failure is this image's problem, not the run's
            reason = f"{type(error).__name__}: {error}".splitlines()[0]
            return record.position, None, label, reason


@dataclass
class ImageBatch:
    positions: torch.Tensor  # (B,) int64 positions of the images that loaded
    pixels: torch.Tensor  # (B, 3, H, W) float
    labels: torch.Tensor  # (B,) int64 class indices, -1 where unknown
    failed: list[tuple[int, str]]  # (position, reason) of the images in this batch that did not load

    def pin_memory(self) -> "ImageBatch":
        # called by the DataLoader's pin-memory thread when pin_memory=True
        self.pixels = self.pixels.pin_memory()
        return self


def collate_images(items: list[tuple[int, torch.Tensor | None, int, str]]) -> ImageBatch:
    """DataLoader ``collate_fn`` for ``ImageDataset``: stack the loaded images, list the failures."""
    loaded = [item for item in items if item[1] is not None]
    return ImageBatch(
        positions=torch.tensor([item[0] for item in loaded], dtype=torch.int64),
        pixels=torch.stack([item[1] for item in loaded]) if loaded else torch.zeros((0, 3, 1, 1)),
        labels=torch.tensor([item[2] for item in loaded], dtype=torch.int64),
        failed=[(item[0], item[3]) for item in items if item[1] is None],
    )
