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
from typing import Iterable, Sequence

from multilabelfy.analysis.labelsets import label_sets_from_lists, write_label_sets
from multilabelfy.catalogue import Catalogue
from multilabelfy.disagreement import AGREED, decision_rows, iter_export
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


@dataclass
class Refinement:
    """The submitted refinement of one image: ``labels`` are class indices (empty: no valid label)."""

    image_id: str
    labels: tuple[int, ...]
    comment: str
    refiner: str
    project: int | None
    updated_at: str
    submissions: int = 1


@dataclass
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
                candidate = Refinement(image_id, choice.labels, choice.comment, refiner, task.get("project"),
                                       annotation.get("updated_at") or annotation.get("created_at") or "")
                earlier = found.get(image_id)
                if earlier is None or candidate.updated_at >= earlier.updated_at:
                    candidate.submissions += earlier.submissions if earlier else 0
                    found[image_id] = candidate
                else:
                    earlier.submissions += 1
    return found


def merge(decisions: Sequence[dict], refinements: dict[str, Refinement],
          manifest_ids: Sequence[str] | None = None) -> list[FinalLabel]:
    """Final labels in manifest order.

    ``decisions``: rows of the decisions table. Without ``manifest_ids`` the order is the decisions' positions
    (then task ids); with it, that order, and manifest images without a task become ``not_annotated``.
    """
    by_image = {row["image_id"]: row for row in decisions}
    unknown = sorted(set(refinements) - set(by_image))
    if unknown:
        raise UserError(f"refined image {unknown[0]!r} is in no annotation task of these decisions; pass the "
                        "refinement projects spawned from this --annotation folder")
    if manifest_ids is None:
        ordered = sorted(decisions, key=lambda r: (r["position"] is None, r["position"] or 0, r["task_id"]))
        manifest_ids = [row["image_id"] for row in ordered]
    final = []
    for position, image_id in enumerate(manifest_ids):
        row = by_image.get(image_id)
        if row is None:
            final.append(FinalLabel(image_id, position, NOT_ANNOTATED, None, None))
            continue
        base = dict(image_id=image_id, position=position, original_label=row["original_label"],
                    annotators=tuple(row["annotators"] or ()), comments=tuple(row["comments"] or ()))
        refined = refinements.get(image_id)
        if refined is not None:
            changed = tuple(refined.labels) != tuple(row["chosen_labels"] or ())
            comments = base.pop("comments") + ((f"{refined.refiner}: {refined.comment}",) if refined.comment else ())
            final.append(FinalLabel(**base, stage=REFINED, labels=refined.labels, refined_by=refined.refiner,
                                    comments=comments, changed_without_comment=changed and not refined.comment))
        elif row["decision"] == AGREED:
            final.append(FinalLabel(**base, stage=AGREED_STAGE, labels=tuple(row["agreed_labels"])))
        else:
            final.append(FinalLabel(**base, stage=UNREFINED, labels=None, reasons=tuple(row["reasons"] or ())))
    return final


def summarise(final: Sequence[FinalLabel]) -> dict:
    """Counts per stage and, over images with final labels, how many labels they have (0, 1, 2, more)."""
    stages = Counter(label.stage for label in final)
    labelled = [label for label in final if label.labels is not None]
    counts = Counter(min(len(label.labels), 3) for label in labelled)
    distribution = {"0": counts[0], "1": counts[1], "2": counts[2], ">2": counts[3]}
    return {
        "images": len(final),
        "stages": {stage: stages[stage] for stage in (AGREED_STAGE, REFINED, UNREFINED, NOT_ANNOTATED)},
        "label_counts": distribution,
        "label_count_rates": {k: (v / len(labelled) if labelled else None) for k, v in distribution.items()},
        "changed_without_comment": sum(label.changed_without_comment for label in final),
    }


def _write_unrefined(path: Path, final: Sequence[FinalLabel]) -> int:
    missing = [label for label in final if label.labels is None]
    with atomic_write(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "position", "stage", "reasons"])
        writer.writerows([m.image_id, m.position, m.stage, ";".join(m.reasons)] for m in missing)
    return len(missing)


def write_outputs(final: Sequence[FinalLabel], catalogue: Catalogue, out_dir: str | os.PathLike,
                  allow_unrefined: bool = False) -> dict:
    """Write the files listed in the module docstring; returns the summary (also ``summary.json``)."""
    out_dir = Path(out_dir)
    missing = _write_unrefined(out_dir / UNREFINED_CSV, final)
    if missing and not allow_unrefined:
        first = next(label for label in final if label.labels is None)
        raise UserError(
            f"{missing} images have no final labels yet (first: {first.image_id!r}, {first.stage}), listed in "
            f"{out_dir / UNREFINED_CSV}; finish their refinement and run finalize again, or pass --allow-unrefined "
            "to write them as empty label sets")
    lists = [list(label.labels or ()) for label in final]
    ids = [label.image_id for label in final]
    write_label_sets(out_dir / LABELS_JSON, label_sets_from_lists(lists, ids, source="finalize"))
    write_json(out_dir / LABELS_BY_ID, dict(zip(ids, lists)), indent=None)
    with atomic_write(out_dir / LABELS_CSV, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "position", "labels", "label_ids", "stage", "original_label", "annotators",
                         "refined_by", "comments", "changed_without_comment"])
        for label, indices in zip(final, lists):
            original = "" if label.original_label is None else label.original_label
            writer.writerow([label.image_id, label.position, " ".join(map(str, indices)),
                             " ".join(catalogue[i].id for i in indices), label.stage, original,
                             ";".join(label.annotators), label.refined_by, " | ".join(label.comments),
                             int(label.changed_without_comment)])
    summary = summarise(final)
    write_json(out_dir / SUMMARY_FILE, summary)
    return summary


def finalize(annotation_folder: str | os.PathLike, refinement_exports: Sequence[str | os.PathLike],
             catalogue: Catalogue, out_dir: str | os.PathLike, manifest_ids: Sequence[str] | None = None,
             allow_unrefined: bool = False, users: dict[int, str] | None = None, progress: bool = False) -> dict:
    """Merge a ``disagreements`` folder with refinement exports on disk and write the final labels."""
    columns = ["task_id", "image_id", "position", "original_label", "decision", "reasons", "annotators",
               "agreed_labels", "chosen_labels", "comments"]
    decisions = decision_rows(annotation_folder, columns)
    refinements = read_refinements(refinement_exports, catalogue, users, progress)
    return write_outputs(merge(decisions, refinements, manifest_ids), catalogue, out_dir, allow_unrefined)
