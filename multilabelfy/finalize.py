"""Stage 5: the final multi-labels, merged from agreement and refinement, with provenance.

Agreed images keep their agreed set; images with a submitted refinement take it (the latest submission,
if an image was refined more than once); every other image is *unrefined* and is listed, never silently
dropped. Outputs (written atomically into one folder):

- ``labels.json``: ReaL style, a list in manifest order of class-index lists (``[]``: no valid label);
- ``labels_by_id.json``: ``{image_id: [class indices]}``;
- ``labels.csv``: ``image_id, position, labels`` (indices, space separated; what ``analysis.labelsets`` reads),
  ``label_ids, stage, original_label, annotators, refined_by, comments, changed_without_comment``;
- ``unrefined.csv``: ``image_id, position, stage, reasons`` of the images without final labels;
- ``summary.json``: counts per stage and the label-count distribution.

While images are unrefined, ``finalize`` writes ``unrefined.csv`` and stops with a one-line error, unless
``allow_unrefined``: then they appear in ``labels.json`` as ``[]`` and in ``labels.csv`` with stage ``unrefined``.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import pyarrow as pa

from multilabelfy.analysis.labelsets import label_sets_from_lists, write_label_sets
from multilabelfy.catalogue import Catalogue
from multilabelfy.disagreement import AGREED, iter_export, read_decisions, table_rows
from multilabelfy.errors import UserError
from multilabelfy.fileio import atomic_write, write_json
from multilabelfy.refinement import parse_refinement

AGREED_STAGE = "agreed"
REFINED = "refined"
UNREFINED = "unrefined"  # needed refinement, none submitted
NOT_ANNOTATED = "not_annotated"  # in the manifest but in no annotation task

LABELS_JSON = "labels.json"
LABELS_BY_ID = "labels_by_id.json"
LABELS_CSV = "labels.csv"
UNREFINED_CSV = "unrefined.csv"
SUMMARY_FILE = "summary.json"
_BATCH_ROWS = 20_000  # decision rows turned into Python objects at a time


@dataclass(slots=True)
class Refinement:
    """The submitted refinement of one image: ``labels`` are class indices (empty: no valid label)."""

    image_id: str
    labels: tuple[int, ...]
    comment: str
    refiner: str
    updated_at: str
    submissions: int = 1


@dataclass(slots=True)
class FinalLabel:
    """One image's final word. ``labels`` is ``None`` while the image has none (unrefined, not annotated)."""

    image_id: str
    position: int | None
    stage: str
    labels: tuple[int, ...] | None
    original_label: int | None
    annotators: tuple[str, ...] = ()
    refined_by: str = ""
    comments: tuple[str, ...] = ()
    changed_without_comment: bool = False
    reasons: tuple[str, ...] = ()


def read_refinements(exports: Iterable[str | os.PathLike], catalogue: Catalogue,
                     users: dict[int, str] | None = None, progress: bool = False) -> dict[str, Refinement]:
    """``{image_id: Refinement}`` from refinement-project exports; skips (cancelled) are not refinements.

    When an image was refined more than once (twice in a project, or in two projects) the latest
    submission wins and ``submissions`` counts them all.
    """
    from tqdm import tqdm

    users = users or {}
    found: dict[str, Refinement] = {}
    for export in exports:
        for task in tqdm(iter_export(export), desc=f"reading {Path(export).name}", unit="image",
                         disable=not progress):
            image_id = str(task["data"].get("image_id", task.get("id")))
            for annotation in task.get("annotations") or []:
                if annotation.get("was_cancelled"):
                    continue
                try:
                    choice = parse_refinement(annotation.get("result") or [], catalogue)
                except UserError as error:
                    raise UserError(f"refinement export {export}, task {task.get('id')}: {error}") from None
                who = annotation.get("completed_by")
                who_id = who.get("id") if isinstance(who, dict) else who
                refiner = (who.get("email") if isinstance(who, dict) else None) or users.get(who_id, str(who_id))
                candidate = Refinement(image_id, choice.labels, choice.comment, refiner,
                                       annotation.get("updated_at") or annotation.get("created_at") or "")
                earlier = found.get(image_id)
                if earlier is None or candidate.updated_at >= earlier.updated_at:
                    candidate.submissions += earlier.submissions if earlier else 0
                    found[image_id] = candidate
                else:
                    earlier.submissions += 1
    return found


def merge(decisions: pa.Table, refinements: dict[str, Refinement],
          manifest_ids: Sequence[str] | None = None) -> Iterator[FinalLabel]:
    """Final labels in manifest order, one at a time.

    ``decisions``: the decisions table (``disagreement.DECISIONS_SCHEMA``, at least the columns finalize reads),
    turned into Python a batch of rows at a time. Without ``manifest_ids`` the order is the decisions'
    positions (then task ids); with it, that order, and manifest images without a task become
    ``not_annotated``.
    """
    image_ids = decisions.column("image_id").to_pylist()
    row_of = {image_id: i for i, image_id in enumerate(image_ids)}
    unknown = sorted(set(refinements) - row_of.keys())
    if unknown:
        raise UserError(f"refined image {unknown[0]!r} is in no annotation task of these decisions; pass the "
                        "refinement projects spawned from this --annotation folder")
    if manifest_ids is None:
        positions, task_ids = decisions.column("position").to_pylist(), decisions.column("task_id").to_pylist()
        order = sorted(range(len(image_ids)),
                       key=lambda i: (positions[i] is None, positions[i] or 0, task_ids[i]))
    else:
        order = [row_of.get(image_id, -1) for image_id in manifest_ids]
    del row_of, image_ids
    for start in range(0, len(order), _BATCH_ROWS):
        chunk = order[start:start + _BATCH_ROWS]
        rows = iter(table_rows(decisions.take([i for i in chunk if i >= 0])))
        for position, index in enumerate(chunk, start=start):
            if index < 0:
                yield FinalLabel(manifest_ids[position], position, NOT_ANNOTATED, None, None)
            else:
                row = next(rows)
                yield _final_label(row, position, refinements.get(row["image_id"]))


def _final_label(row: dict, position: int, refined: Refinement | None) -> FinalLabel:
    base = dict(image_id=row["image_id"], position=position, original_label=row["original_label"],
                annotators=tuple(row["annotators"] or ()))
    comments = tuple(row["comments"] or ())
    if refined is not None:
        changed = tuple(refined.labels) != tuple(row["chosen_labels"] or ())
        comments += (f"{refined.refiner}: {refined.comment}",) if refined.comment else ()
        return FinalLabel(**base, stage=REFINED, labels=refined.labels, refined_by=refined.refiner,
                          comments=comments, changed_without_comment=changed and not refined.comment)
    if row["decision"] == AGREED:
        return FinalLabel(**base, stage=AGREED_STAGE, labels=tuple(row["agreed_labels"]), comments=comments)
    return FinalLabel(**base, stage=UNREFINED, labels=None, comments=comments, reasons=tuple(row["reasons"] or ()))


def _write_unrefined(path: Path, missing: Sequence[FinalLabel]) -> None:
    with atomic_write(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "position", "stage", "reasons"])
        writer.writerows([m.image_id, m.position, m.stage, ";".join(m.reasons)] for m in missing)


def write_outputs(final: Iterable[FinalLabel], catalogue: Catalogue, out_dir: str | os.PathLike,
                  allow_unrefined: bool = False) -> dict:
    """Write the files listed in the module docstring from ``final`` (consumed once, in order); returns the
    summary (also ``summary.json``): ``images``, ``stages``, ``label_counts`` and ``label_count_rates`` over the
    images with labels (``"0"``, ``"1"``, ``"2"``, ``">2"``), ``changed_without_comment``."""
    out_dir = Path(out_dir)
    ids: list[str] = []
    lists: list[list[int]] = []
    missing: list[FinalLabel] = []
    stages: Counter[str] = Counter()
    counts: Counter[int] = Counter()
    changed = 0
    with atomic_write(out_dir / LABELS_CSV, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "position", "labels", "label_ids", "stage", "original_label", "annotators",
                         "refined_by", "comments", "changed_without_comment"])
        for label in final:
            indices = list(label.labels or ())
            ids.append(label.image_id)
            lists.append(indices)
            stages[label.stage] += 1
            changed += label.changed_without_comment
            if label.labels is None:
                missing.append(label)
            else:
                counts[min(len(indices), 3)] += 1
            original = "" if label.original_label is None else label.original_label
            writer.writerow([label.image_id, label.position, " ".join(map(str, indices)),
                             " ".join(catalogue[i].id for i in indices), label.stage, original,
                             ";".join(label.annotators), label.refined_by, " | ".join(label.comments),
                             int(label.changed_without_comment)])
        _write_unrefined(out_dir / UNREFINED_CSV, missing)
        if missing and not allow_unrefined:  # raised inside the block: labels.csv is not replaced either
            raise UserError(
                f"{len(missing)} images have no final labels yet (first: {missing[0].image_id!r}, "
                f"{missing[0].stage}), listed in {out_dir / UNREFINED_CSV}; finish their refinement and run finalize "
                "again, or pass --allow-unrefined to write them as empty label sets")
    write_label_sets(out_dir / LABELS_JSON, label_sets_from_lists(lists, ids, source="finalize"))
    write_json(out_dir / LABELS_BY_ID, dict(zip(ids, lists)), indent=None)
    labelled = sum(counts.values())
    distribution = {"0": counts[0], "1": counts[1], "2": counts[2], ">2": counts[3]}
    summary = {
        "images": len(ids),
        "stages": {stage: stages[stage] for stage in (AGREED_STAGE, REFINED, UNREFINED, NOT_ANNOTATED)},
        "label_counts": distribution,
        "label_count_rates": {k: (v / labelled if labelled else None) for k, v in distribution.items()},
        "changed_without_comment": changed,
    }
    write_json(out_dir / SUMMARY_FILE, summary)
    return summary


def finalize(annotation_folder: str | os.PathLike, refinement_exports: Sequence[str | os.PathLike],
             catalogue: Catalogue, out_dir: str | os.PathLike, manifest_ids: Sequence[str] | None = None,
             allow_unrefined: bool = False, users: dict[int, str] | None = None, progress: bool = False) -> dict:
    """Merge a ``disagreements`` folder with refinement exports on disk and write the final labels."""
    columns = ["task_id", "image_id", "position", "original_label", "decision", "reasons", "annotators",
               "agreed_labels", "chosen_labels", "comments"]
    decisions = read_decisions(annotation_folder, columns)
    refinements = read_refinements(refinement_exports, catalogue, users, progress)
    return write_outputs(merge(decisions, refinements, manifest_ids), catalogue, out_dir, allow_unrefined)
