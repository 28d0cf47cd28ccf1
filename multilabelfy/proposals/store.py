"""The proposals Parquet (schema in docs/architecture.md), its chunk files, and the errors CSV.

A run writes one small Parquet file per chunk of consecutive positions into ``<out>.parts/`` (each written
atomically, so a killed run leaves only whole chunks), then merges them into ``<out>`` and ``<out>.errors.csv``.
Chunk files carry an extra ``error`` column; rows with an error become lines of the errors CSV.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from multilabelfy.dataset import ImageRecord
from multilabelfy.errors import UserError
from multilabelfy.fileio import atomic_path, atomic_write, write_json

SCHEMA = pa.schema([
    ("position", pa.int64()),
    ("image_id", pa.string()),
    ("image", pa.string()),
    ("label", pa.int64()),
    ("topk_indices", pa.list_(pa.int32())),
    ("topk_probs", pa.list_(pa.float32())),
    ("label_rank", pa.int32()),
])
_PART_SCHEMA = SCHEMA.append(pa.field("error", pa.string()))
META_PREFIX = "multilabelfy."
ERROR_COLUMNS = ("image_id", "image", "reason")
_PART_NAME = re.compile(r"part-(\d{6,})\.parquet")

# one image's result: (top-k indices, top-k probs, label rank or -1) or the reason it could not be read
Result = tuple[np.ndarray, np.ndarray, int] | str


def parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def errors_path(out: Path) -> Path:
    return out.with_name(out.name + ".errors.csv")


def write_run_card(parts: Path, card: Mapping[str, str]) -> None:
    """Record what a run computes, so that a resumed run can refuse parts from a different one."""
    parts.mkdir(parents=True, exist_ok=True)
    path = parts / "run.json"
    if not path.exists():
        write_json(path, dict(card))


def check_run_card(parts: Path, card: Mapping[str, str]) -> None:
    saved = json.loads((parts / "run.json").read_text(encoding="utf-8"))
    changed = sorted(key for key in card if saved.get(key) != card[key])
    if changed:
        raise UserError(
            f"{parts} holds a run with another {', '.join(changed)}; pass another --out, or remove that folder "
            "to start over"
        )


def done_chunks(parts: Path) -> set[int]:
    """Chunk numbers whose part file is complete on disk."""
    return {int(m.group(1)) for p in parts.iterdir() if (m := _PART_NAME.fullmatch(p.name))}


def write_chunk(parts: Path, chunk: int, records: Sequence[ImageRecord], results: Mapping[int, Result]) -> None:
    """Write one chunk's rows (``records`` in position order; ``results`` by position), atomically."""
    rows = {name: [] for name in _PART_SCHEMA.names}
    for record in records:
        result = results[record.position]
        failed = isinstance(result, str)
        rows["position"].append(record.position)
        rows["image_id"].append(record.image_id)
        rows["image"].append(record.image)
        rows["label"].append(record.label)
        rows["topk_indices"].append(None if failed else result[0].astype(np.int32))
        rows["topk_probs"].append(None if failed else result[1].astype(np.float32))
        rows["label_rank"].append(None if failed or result[2] < 0 else int(result[2]))
        rows["error"].append(result if failed else None)
    table = pa.table(rows, schema=_PART_SCHEMA)
    with atomic_path(parts / f"part-{chunk:06d}.parquet") as tmp:
        pq.write_table(table, tmp)


def merge_chunks(parts: Path, out: Path, n_images: int, metadata: Mapping[str, str]) -> tuple[int, int]:
    """Merge all part files into ``out`` (rows in position order) and its errors CSV.

    Returns (images with proposals, images that could not be read). Raises if a position is missing.
    """
    files = sorted(p for p in parts.iterdir() if _PART_NAME.fullmatch(p.name))
    table = pa.concat_tables([pq.read_table(p, schema=_PART_SCHEMA) for p in files]).sort_by("position")
    positions = table.column("position").to_numpy()
    if len(positions) != n_images or not np.array_equal(positions, np.arange(n_images)):
        raise RuntimeError(f"{parts} covers {len(positions)} of {n_images} images; re-run to compute the rest")
    failed = table.column("error").is_valid()
    ok = table.filter(pc.invert(failed)).drop_columns(["error"])
    ok = ok.replace_schema_metadata({f"{META_PREFIX}{key}": str(value) for key, value in metadata.items()})
    errors = table.filter(failed)
    with atomic_path(out) as tmp:
        pq.write_table(ok, tmp)
    with atomic_write(errors_path(out), newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(ERROR_COLUMNS)
        writer.writerows(zip(*(errors.column(c).to_pylist() for c in ("image_id", "image", "error"))))
    return ok.num_rows, errors.num_rows


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``multilabelfy.*`` key-value metadata of a proposals Parquet, without the prefix."""
    raw = pq.read_schema(path).metadata or {}
    return {
        key.decode()[len(META_PREFIX):]: value.decode()
        for key, value in raw.items() if key.decode().startswith(META_PREFIX)
    }


def read_proposals(path: str | os.PathLike) -> pd.DataFrame:
    """A proposals Parquet as a DataFrame (columns as in ``SCHEMA``; list columns hold numpy arrays)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"proposals file {path} does not exist; make it with `multilabelfy propose`")
    try:
        table = pq.read_table(path)
    except Exception as error:
        raise UserError(f"proposals file {path} is not a readable Parquet file ({type(error).__name__})") from None
    missing = [name for name in SCHEMA.names if name not in table.column_names]
    if missing:
        raise UserError(f"proposals file {path} lacks the columns {', '.join(missing)}; make it with `multilabelfy propose`")
    return table.to_pandas()
