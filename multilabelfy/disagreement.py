"""Stage 3: which images did the annotators agree on, and why the others need refinement.

Input is a Label Studio JSON export saved on disk (a list of tasks with ``data``, ``annotations``, ``drafts``
and ``predictions``), streamed one task at a time so that memory stays bounded however large it is.
Each task becomes:

- one :class:`AnnotatorRow` per (image, annotator): the annotator's last submitted annotation, or a skip
  when all of theirs were cancelled; earlier annotations by the same person are counted as ``superseded``;
- one :class:`ImageDecision`: ``AGREED`` when at least ``required`` distinct annotators finished the image,
  all chose exactly the same label set, and that set contains the original label; otherwise
  ``NEEDS_REFINEMENT`` with every reason that applies (``REASONS``).

Drafts are never counted as annotations (nobody submitted them) but are tallied. Labels are class indices;
a choice that is a class of the catalogue but not among the task's proposals is kept (and counted),
a choice the catalogue does not know is dropped and sends the image to refinement.

:func:`analyse_exports` writes ``annotations.parquet`` (the rows), ``decisions.parquet`` (the decisions)
and ``summary.json`` into a folder, atomically and in chunks; see ``docs/architecture.md``.
"""

from __future__ import annotations

import operator
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from multilabelfy.agreement import AlphaAccumulator, PairwiseAccumulator
from multilabelfy.annotation.tasks import parse_annotation
from multilabelfy.catalogue import Catalogue
from multilabelfy.errors import UserError
from multilabelfy.fileio import atomic_path, write_json

AGREED = "AGREED"
NEEDS_REFINEMENT = "NEEDS_REFINEMENT"

SUBMITTED = "submitted"
SKIPPED = "skipped"

# Why an image needs refinement (an image may have several).
NO_ANNOTATIONS = "no_annotations"  # nobody annotated or skipped it
ALL_SKIPPED = "all_skipped"  # everyone who opened it skipped it
TOO_FEW_ANNOTATORS = "too_few_annotators"  # fewer distinct finished annotators than required
SETS_DIFFER = "sets_differ"  # finished annotators chose different label sets
ORIGINAL_LABEL_MISSING = "original_label_missing"  # the agreed set lacks the dataset's label
ORIGINAL_LABEL_UNKNOWN = "original_label_unknown"  # the dataset has no label for the image to confirm
UNKNOWN_LABEL = "unknown_label"  # a choice is not a class of the catalogue
EMPTY_ANNOTATION = "empty_annotation"  # submitted with no class and without "none of these"
REASONS = (NO_ANNOTATIONS, ALL_SKIPPED, TOO_FEW_ANNOTATORS, SETS_DIFFER, ORIGINAL_LABEL_MISSING,
           ORIGINAL_LABEL_UNKNOWN, UNKNOWN_LABEL, EMPTY_ANNOTATION)

ANNOTATIONS_FILE = "annotations.parquet"
DECISIONS_FILE = "decisions.parquet"
SUMMARY_FILE = "summary.json"

_CHUNK_ROWS = 50_000  # rows buffered before a Parquet row group is written


@dataclass
class AnnotatorRow:
    """One annotator's final word on one image.

    ``labels``: sorted class indices chosen (empty for a skip or "none of these").
    ``superseded``: how many other annotations of this image by the same annotator were set aside
    (the last submitted one counts; a skip counts only when nothing was submitted).
    ``outside_proposals``: chosen indices not among the task's proposals. ``unknown_labels``: chosen ids
    the catalogue does not know (dropped from ``labels``).
    """

    task_id: int
    image_id: str
    annotator: str
    annotator_id: int | None
    annotation_id: int | None
    status: str
    labels: tuple[int, ...]
    none_of_these: bool
    comment: str
    superseded: int = 0
    outside_proposals: tuple[int, ...] = ()
    unknown_labels: tuple[str, ...] = ()
    lead_time: float | None = None
    batch: str = ""


@dataclass
class ImageDecision:
    """The verdict on one image (one task).

    ``annotators``/``label_sets``: the finished annotators (sorted) and their label sets, aligned.
    ``agreed_labels``: the agreed set for ``AGREED`` images, else ``None``. ``chosen_labels``: the union of
    every finished annotator's choices (pre-checked in refinement). ``comments``: ``"annotator: text"``.
    """

    task_id: int
    image_id: str
    position: int | None
    batch: str
    original_label: int | None
    proposals: tuple[int, ...]
    decision: str
    reasons: tuple[str, ...]
    annotators: tuple[str, ...]
    label_sets: tuple[tuple[int, ...], ...]
    skipped_by: tuple[str, ...]
    agreed_labels: tuple[int, ...] | None
    chosen_labels: tuple[int, ...]
    comments: tuple[str, ...]
    superseded: int = 0
    drafts: int = 0


# --- reading an export ---------------------------------------------------------------------------------------


def iter_export(path: str | os.PathLike) -> Iterator[dict]:
    """The tasks of a Label Studio JSON export file, one at a time (streamed with ijson, never loaded whole)."""
    import ijson

    path = Path(path)
    if not path.is_file():
        raise UserError(f"export file {path} does not exist; pass a Label Studio JSON export (or --project)")
    with open(path, "rb") as handle:
        try:
            for task in ijson.items(handle, "item", use_float=True):
                if not isinstance(task, dict) or "data" not in task:
                    raise UserError(f"export file {path}: an item is not a task with 'data'; pass Label Studio's "
                                    "JSON export (not JSON-MIN or CSV)")
                yield task
        except ijson.JSONError as error:
            reason = str(error).splitlines()[0].strip() if str(error).strip() else type(error).__name__
            raise UserError(f"export file {path} is not valid JSON ({reason}); export the project again") from None


def _annotator_of(annotation: dict, users: dict[int, str]) -> tuple[str, int | None]:
    """(display name, user id) of an annotation's author; exports give a user id or a dict with id/email."""
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        user_id = who.get("id")
        name = who.get("email") or users.get(user_id) or (str(user_id) if user_id is not None else "")
        return name or "unknown", user_id
    if who is None:
        return "unknown", None
    return users.get(int(who), str(who)), int(who)


@lru_cache(maxsize=8)
def _index_by_id(catalogue: Catalogue) -> dict[str, int]:
    """Class id -> index: Label Studio choices are class ids; one dict lookup each (hot loop)."""
    return {info.id: info.index for info in catalogue}


def _proposal_indices(data: dict, index_by_id: dict[str, int]) -> tuple[int, ...]:
    return tuple(index_by_id[c] for c in data.get("proposals", ()) if c in index_by_id)


def _normalise(task: dict, index_by_id: dict[str, int], proposals: set[int], users: dict[int, str],
               batch: str) -> list[AnnotatorRow]:
    """One row per distinct annotator of ``task`` (see :class:`AnnotatorRow` for how duplicates are settled)."""
    data = task["data"]
    task_id = int(task.get("id", -1))
    image_id = str(data.get("image_id", task_id))
    batch = str(data.get("batch") or batch)
    by_annotator: dict[str, list[dict]] = defaultdict(list)
    for annotation in task.get("annotations") or []:
        by_annotator[_annotator_of(annotation, users)[0]].append(annotation)

    rows = []
    for annotator, own in sorted(by_annotator.items()):
        submitted = [a for a in own if not a.get("was_cancelled")]
        # The last word counts: latest update, then latest creation, then highest id.
        chosen = max(submitted or own,
                     key=lambda a: (a.get("updated_at") or "", a.get("created_at") or "", a.get("id") or 0))
        parsed = parse_annotation(chosen.get("result") or [])
        known = {class_id: index_by_id.get(class_id) for class_id in parsed.selected}
        labels = tuple(sorted(index for index in known.values() if index is not None))
        status = SUBMITTED if submitted else SKIPPED
        rows.append(AnnotatorRow(
            task_id=task_id, image_id=image_id, annotator=annotator,
            annotator_id=_annotator_of(chosen, users)[1], annotation_id=chosen.get("id"), status=status,
            labels=labels if status == SUBMITTED else (),
            none_of_these=parsed.none_of_these and status == SUBMITTED, comment=parsed.comment,
            superseded=len(own) - 1,
            outside_proposals=tuple(i for i in labels if i not in proposals) if status == SUBMITTED else (),
            unknown_labels=tuple(sorted(c for c, i in known.items() if i is None)) if status == SUBMITTED else (),
            lead_time=chosen.get("lead_time"), batch=batch,
        ))
    return rows


# --- the decision rule --------------------------------------------------------------------------------------


def decide(rows: list[AnnotatorRow], original_label: int | None, required: int) -> tuple[str, tuple[str, ...]]:
    """``(AGREED, ())`` or ``(NEEDS_REFINEMENT, reasons)`` for one image's annotator rows.

    AGREED needs at least ``required`` distinct finished annotators, identical label sets, and the original
    label inside that set. "None of these" (an empty set) agreed by all still lacks the original label.
    """
    finished = [row for row in rows if row.status == SUBMITTED]
    reasons = []
    if not rows:
        reasons.append(NO_ANNOTATIONS)
    elif not finished:
        reasons.append(ALL_SKIPPED)
    elif len(finished) < required:
        reasons.append(TOO_FEW_ANNOTATORS)
    sets = {row.labels for row in finished}
    if len(sets) > 1:
        reasons.append(SETS_DIFFER)
    if len(sets) == 1:
        if original_label is None:
            reasons.append(ORIGINAL_LABEL_UNKNOWN)
        elif original_label not in next(iter(sets)):
            reasons.append(ORIGINAL_LABEL_MISSING)
    if any(row.unknown_labels for row in finished):
        reasons.append(UNKNOWN_LABEL)
    if any(not row.labels and not row.none_of_these and not row.unknown_labels for row in finished):
        reasons.append(EMPTY_ANNOTATION)
    return (NEEDS_REFINEMENT, tuple(reasons)) if reasons else (AGREED, ())


def decide_task(task: dict, catalogue: Catalogue, required: int, users: dict[int, str] | None = None,
                batch: str = "") -> tuple[list[AnnotatorRow], ImageDecision]:
    """Normalise one exported task (one :class:`AnnotatorRow` per distinct annotator) and decide it.

    ``batch`` names the task's batch unless its data has a ``batch`` field (batches are projects by default).
    """
    data = task["data"]
    index_by_id = _index_by_id(catalogue)
    proposals = _proposal_indices(data, index_by_id)
    batch = str(data.get("batch") or batch)
    rows = _normalise(task, index_by_id, set(proposals), users or {}, batch)
    original = data.get("original_label_index")
    if original is None and data.get("original_label") is not None:
        original = index_by_id.get(str(data["original_label"]))
    original = None if original is None else int(original)
    decision, reasons = decide(rows, original, required)
    finished = [row for row in rows if row.status == SUBMITTED]
    position = data.get("position")
    return rows, ImageDecision(
        task_id=int(task.get("id", -1)),
        image_id=str(data.get("image_id", task.get("id"))),
        position=None if position is None else int(position),
        batch=batch,
        original_label=original,
        proposals=proposals,
        decision=decision,
        reasons=reasons,
        annotators=tuple(row.annotator for row in finished),
        label_sets=tuple(row.labels for row in finished),
        skipped_by=tuple(row.annotator for row in rows if row.status == SKIPPED),
        agreed_labels=finished[0].labels if decision == AGREED else None,
        chosen_labels=tuple(sorted({i for row in finished for i in row.labels})),
        comments=tuple(f"{row.annotator}: {row.comment}" for row in rows if row.comment),
        superseded=sum(row.superseded for row in rows),
        drafts=len(task.get("drafts") or []),
    )


# --- the summary ------------------------------------------------------------------------------------------------


@dataclass
class SummaryAccumulator:
    """Counts, rates and agreement statistics over all images, fed one image at a time."""

    catalogue: Catalogue
    required: int
    images: int = 0
    decisions: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    annotations: Counter = field(default_factory=Counter)
    per_annotator: dict = field(default_factory=lambda: defaultdict(Counter))
    lead_times: dict = field(default_factory=lambda: defaultdict(float))
    per_batch: dict = field(default_factory=lambda: defaultdict(Counter))
    alpha: AlphaAccumulator = field(default_factory=AlphaAccumulator)
    pairwise: PairwiseAccumulator = field(default_factory=PairwiseAccumulator)

    def add(self, rows: list[AnnotatorRow], decision: ImageDecision) -> None:
        self.images += 1
        self.decisions[decision.decision] += 1
        self.reasons.update(decision.reasons)
        self.annotations["drafts"] += decision.drafts
        self.annotations["superseded"] += decision.superseded
        batch = self.per_batch[decision.batch]
        batch["images"] += 1
        batch[decision.decision] += 1
        for row in rows:
            self.annotations[row.status] += 1
            self.annotations["none_of_these"] += row.none_of_these
            self.annotations["labels_outside_proposals"] += len(row.outside_proposals)
            self.annotations["unknown_labels"] += len(row.unknown_labels)
            mine = self.per_annotator[row.annotator]
            mine[row.status] += 1
            mine["superseded"] += row.superseded
            if row.status == SUBMITTED:
                mine[decision.decision] += 1
                if row.lead_time is not None:
                    mine["timed"] += 1
                    self.lead_times[row.annotator] += float(row.lead_time)
        finished = {row.annotator: frozenset(row.labels) for row in rows if row.status == SUBMITTED}
        self.alpha.add_unit(list(finished.values()))
        self.pairwise.add_image(finished)

    def result(self, top_confused: int = 20) -> dict:
        """The summary as JSON-ready data (see ``docs/architecture.md``)."""
        def rate(part: int, whole: int) -> float | None:
            return part / whole if whole else None

        per_annotator = []
        for annotator, counts in sorted(self.per_annotator.items()):
            finished = counts[SUBMITTED]
            per_annotator.append({
                "annotator": annotator, "submitted": finished, "skipped": counts[SKIPPED],
                "superseded": counts["superseded"], "agreed": counts[AGREED],
                "agreed_rate": rate(counts[AGREED], finished),
                "mean_lead_time_s": rate(self.lead_times[annotator], counts["timed"]),
            })
        per_batch = [
            {"batch": batch, "images": c["images"], "agreed": c[AGREED], "needs_refinement": c[NEEDS_REFINEMENT],
             "agreed_rate": rate(c[AGREED], c["images"])}
            for batch, c in sorted(self.per_batch.items())
        ]
        confused = []
        for (a, b), count in self.pairwise.most_confused(top_confused):
            confused.append({"class_a": a, "id_a": self.catalogue[a].id, "name_a": self.catalogue[a].name,
                             "class_b": b, "id_b": self.catalogue[b].id, "name_b": self.catalogue[b].name,
                             "count": count})
        return {
            "required_annotators": self.required,
            "images": self.images,
            "agreed": self.decisions[AGREED],
            "needs_refinement": self.decisions[NEEDS_REFINEMENT],
            "agreed_rate": rate(self.decisions[AGREED], self.images),
            "needs_refinement_rate": rate(self.decisions[NEEDS_REFINEMENT], self.images),
            "reasons": {reason: self.reasons[reason] for reason in REASONS},
            "annotations": {key: self.annotations[key] for key in (
                SUBMITTED, SKIPPED, "superseded", "drafts", "none_of_these", "labels_outside_proposals",
                "unknown_labels")},
            "per_annotator": per_annotator,
            "per_batch": per_batch,
            "pairwise": {"images": self.pairwise.images, "mean_jaccard": self.pairwise.mean_jaccard,
                         "exact_match_rate": self.pairwise.exact_match_rate, "per_pair": self.pairwise.per_pair()},
            "krippendorff_alpha_masi": self.alpha.alpha(),
            "alpha_values": self.alpha.n_values,
            "most_confused": confused,
        }


# --- tables on disk -----------------------------------------------------------------------------------------------

_LABELS = pa.list_(pa.int32())
ANNOTATIONS_SCHEMA = pa.schema([
    ("task_id", pa.int64()), ("image_id", pa.string()), ("annotator", pa.string()),
    ("annotator_id", pa.int64()), ("annotation_id", pa.int64()), ("status", pa.string()),
    ("labels", _LABELS), ("none_of_these", pa.bool_()), ("comment", pa.string()), ("superseded", pa.int32()),
    ("outside_proposals", _LABELS), ("unknown_labels", pa.list_(pa.string())), ("lead_time", pa.float64()),
    ("batch", pa.string()),
])
DECISIONS_SCHEMA = pa.schema([
    ("task_id", pa.int64()), ("image_id", pa.string()), ("position", pa.int64()), ("batch", pa.string()),
    ("original_label", pa.int32()), ("proposals", _LABELS), ("decision", pa.string()),
    ("reasons", pa.list_(pa.string())), ("annotators", pa.list_(pa.string())), ("label_sets", pa.list_(_LABELS)),
    ("skipped_by", pa.list_(pa.string())), ("agreed_labels", _LABELS), ("chosen_labels", _LABELS),
    ("comments", pa.list_(pa.string())), ("superseded", pa.int32()), ("drafts", pa.int32()),
])


class _ChunkedParquet:
    """Rows (dataclasses with the schema's fields) buffered and written a Parquet row group at a time."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.schema = schema
        self.fields = operator.attrgetter(*schema.names)  # one C call per row gives its values as a tuple
        self.writer = pq.ParquetWriter(path, schema)
        self.buffer: list[tuple] = []

    def append(self, row: Any) -> None:
        self.buffer.append(self.fields(row))
        if len(self.buffer) >= _CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            columns = [pa.array(values, type=field.type) for values, field in zip(zip(*self.buffer), self.schema)]
            self.writer.write_table(pa.Table.from_arrays(columns, schema=self.schema))
            self.buffer = []

    def close(self) -> None:
        self.flush()
        self.writer.close()


def analyse_exports(exports: Sequence[str | os.PathLike], out_dir: str | os.PathLike, catalogue: Catalogue,
                    required: int = 2, users: dict[int, str] | None = None, batches: Sequence[str] | None = None,
                    source: dict | None = None, progress: bool = True) -> dict:
    """Decide every image of the exports (one per annotation project); write tables and summary into ``out_dir``.

    ``batches`` names each export's batch (default: its file name) for tasks without a ``batch`` field.
    ``users`` maps Label Studio user ids to emails (exports may carry ids only). ``source`` (project ids,
    titles, ...) is recorded in the summary with the export paths. Returns the summary. Outputs appear only
    when complete.
    """
    from tqdm import tqdm

    if required < 1:
        raise UserError(f"--min-annotators must be at least 1, not {required}")
    exports = [Path(export).absolute() for export in exports]
    batches = list(batches) if batches is not None else [export.stem for export in exports]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = SummaryAccumulator(catalogue=catalogue, required=required)
    seen_images: dict[str, Path] = {}
    with atomic_path(out_dir / ANNOTATIONS_FILE) as rows_tmp, atomic_path(out_dir / DECISIONS_FILE) as decisions_tmp:
        rows_out = _ChunkedParquet(rows_tmp, ANNOTATIONS_SCHEMA)
        decisions_out = _ChunkedParquet(decisions_tmp, DECISIONS_SCHEMA)
        try:
            with tqdm(desc="deciding images", unit="image", disable=not progress) as bar:
                for export, batch in zip(exports, batches):
                    for task in iter_export(export):
                        rows, decision = decide_task(task, catalogue, required, users, batch)
                        if decision.image_id in seen_images:
                            raise UserError(
                                f"export {export}, task {decision.task_id}: image {decision.image_id!r} is also in "
                                f"an earlier task of {seen_images[decision.image_id]}; remove the duplicate task")
                        seen_images[decision.image_id] = export
                        for row in rows:
                            rows_out.append(row)
                        decisions_out.append(decision)
                        summary.add(rows, decision)
                        bar.update()
            if not seen_images:
                raise UserError(f"the export(s) {', '.join(str(e) for e in exports)} hold no tasks; is the "
                                "project empty, or is this the right project?")
        finally:
            rows_out.close()
            decisions_out.close()
        result = {"source": {**(source or {}), "exports": [str(e) for e in exports], "catalogue": catalogue.source},
                  **summary.result()}
    write_json(out_dir / SUMMARY_FILE, result)
    return result


def read_decisions(folder: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    """The decisions table (``DECISIONS_SCHEMA``, or only ``columns``) a ``disagreements`` run wrote into ``folder``."""
    path = Path(folder) / DECISIONS_FILE
    if not path.is_file():
        raise UserError(f"{path} does not exist; run `multilabelfy disagreements --out {folder}` first")
    return pq.read_table(path, columns=columns)


def decision_rows(folder: str | os.PathLike, columns: list[str] | None = None) -> list[dict]:
    """The decisions as one dict per image."""
    return table_rows(read_decisions(folder, columns))


def table_rows(table: pa.Table) -> list[dict]:
    """One dict per row, as ``Table.to_pylist`` but several times faster for list columns."""
    values = [_pylist(table.column(name)) for name in table.column_names]
    return [dict(zip(table.column_names, row)) for row in zip(*values)]


def _pylist(values: pa.Array | pa.ChunkedArray) -> list:
    """Arrow values as Python values; lists through their offsets (pyarrow's per-row conversion is slow)."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_integer(array.type) and array.null_count == 0:
        return array.to_numpy().tolist()
    if not pa.types.is_list(array.type):
        return array.to_pylist()
    offsets = array.offsets.to_numpy().tolist()
    flat = _pylist(array.values)
    valid = array.is_valid().to_pylist()
    return [flat[offsets[i]:offsets[i + 1]] if valid[i] else None for i in range(len(array))]


def format_summary(summary: dict) -> str:
    """A few lines for the terminal: counts, rates, reasons and agreement."""
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}%"

    def num(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = [
        f"images: {summary['images']}  agreed: {summary['agreed']} ({pct(summary['agreed_rate'])})  "
        f"needs refinement: {summary['needs_refinement']} ({pct(summary['needs_refinement_rate'])})",
        "reasons: " + (", ".join(f"{k} {v}" for k, v in summary["reasons"].items() if v) or "none"),
        "annotations: " + ", ".join(f"{k} {v}" for k, v in summary["annotations"].items()),
        f"pairwise Jaccard: {num(summary['pairwise']['mean_jaccard'])}  exact match: "
        f"{pct(summary['pairwise']['exact_match_rate'])}  Krippendorff's alpha (MASI): "
        f"{num(summary['krippendorff_alpha_masi'])}",
    ]
    for row in summary["most_confused"][:5]:
        lines.append(f"  confused: {row['name_a']} / {row['name_b']}: {row['count']}")
    return "\n".join(lines)


def users_by_id(users: list[dict]) -> dict[int, str]:
    """Label Studio user objects -> ``{id: email}``."""
    return {int(user["id"]): user.get("email") or str(user["id"]) for user in users}

