"""Stage 4: refinement projects for the images the first annotators did not agree on.

Open-source Label Studio cannot assign tasks to people, so the images that need refinement are split
evenly (in manifest order, each to whoever has fewest) among the experienced annotators, one project per
annotator, titled ``<annotation project title> - refine <annotator>``. Each task shows the annotation UI
(``project_templates/refinement.xml``) with:

- the original task's 20 proposals (same options, synonyms and exemplar strips as in annotation), plus
  ``group_extra``: every class an earlier annotator chose that is not a proposal;
- the union of the earlier choices pre-checked, as a prediction with model version ``MODEL_VERSION``
  (the project pre-labels with it); "none of these" pre-checked when every earlier annotator said so;
- ``earlier``: what each earlier annotator chose, skipped and wrote;
- a required comment.

Spawning is idempotent: projects are found by title, tasks by image id, and only what is missing is
created, so a re-run completes an interrupted one and a second run creates nothing.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from multilabelfy.annotation.tasks import (
    GROUPS, IMAGE, MAX_PROPOSALS, NONE_OF_THESE, NONE_OF_THESE_VALUE, build_task_data, parse_annotation,
    prediction_result,
)
from multilabelfy.catalogue import Catalogue
from multilabelfy.disagreement import NEEDS_REFINEMENT, SUMMARY_FILE, decision_rows, iter_export
from multilabelfy.errors import UserError
from multilabelfy.fileio import write_json

TEMPLATE = "refinement.xml"
EXTRA_GROUP = "group_extra"  # the template's Choices for earlier choices outside the proposals
EARLIER = "earlier"  # the template's HyperText with the earlier annotators' choices and comments
MODEL_VERSION = "multilabelfy-refinement"
TITLE_MAX = 50  # Label Studio's limit on a project title
_TITLE_JOIN = " - refine "
ASSIGNMENT_FILE = "refinement.json"  # written into the disagreement folder: who refines which images
_IMPORT_CHUNK = 500  # refinement tasks held per expert before they are imported (bounds memory)
_BATCH_SUFFIX = re.compile(r" \(batch \d+/\d+\)$")  # create-project's batch titles: "<title> (batch i/K)"


def load_template() -> str:
    """The refinement labeling config (``project_templates/refinement.xml``)."""
    return resources.files("multilabelfy.project_templates").joinpath(TEMPLATE).read_text(encoding="utf-8")


def refinement_title(annotation_title: str, annotator: str) -> str:
    """The title of ``annotator``'s refinement project, ``"<title> - refine <email>"``: how re-runs find it.

    Label Studio refuses titles over 50 characters: a long annotation title is shortened (ending in "~"), and
    an email too long to leave it 8 characters becomes its first part and a hash of the whole (still unique).
    """
    who = annotator
    if len(_TITLE_JOIN) + len(who) > TITLE_MAX - 8:
        digest = hashlib.sha1(annotator.encode("utf-8")).hexdigest()[:6]
        who = f"{annotator[:TITLE_MAX - 8 - len(_TITLE_JOIN) - 7]}~{digest}"
    room = TITLE_MAX - len(_TITLE_JOIN) - len(who)
    base = annotation_title if len(annotation_title) <= room else annotation_title[:room - 1] + "~"
    return f"{base}{_TITLE_JOIN}{who}"


def _earlier_html(decision: dict, catalogue: Catalogue) -> str:
    """One line per earlier annotator: their classes (or skip / none of these) and their comment."""
    comments: dict[str, list[str]] = {}
    for text in decision["comments"] or []:
        who, _, said = text.partition(": ")
        comments.setdefault(who, []).append(said)
    lines = []
    for annotator, labels in zip(decision["annotators"], decision["label_sets"]):
        names = ", ".join(catalogue[index].name for index in labels) or "none of these"
        lines.append((annotator, html.escape(names)))
    lines += [(annotator, "<i>skipped</i>") for annotator in decision["skipped_by"] or []]
    items = []
    for annotator, said in lines:
        note = "".join(f" &mdash; <i>&ldquo;{html.escape(c)}&rdquo;</i>" for c in comments.get(annotator, []))
        items.append(f"<li><b>{html.escape(annotator)}</b>: {said}{note}</li>")
    if not items:
        items.append("<li>nobody annotated this image</li>")
    return "<b>Earlier annotators</b><ul>" + "".join(items) + "</ul>"


def _extra_options(data: dict, extra_ids: list[str], catalogue: Catalogue) -> list[dict]:
    """Options for classes outside the proposals, rendered like proposals (without rank or hotkey)."""
    options = []
    for start in range(0, len(extra_ids), MAX_PROPOSALS):
        chunk = [catalogue.index_of(class_id) for class_id in extra_ids[start:start + MAX_PROPOSALS]]
        rendered = build_task_data(data[IMAGE], data["image_id"], None, chunk, catalogue)
        options += [{key: value for key, value in option.items() if key != "hotkey"}
                    for group in GROUPS for option in rendered[group]]
    return options


def build_refinement_task(data: dict, decision: dict, catalogue: Catalogue) -> dict:
    """The refinement task (``{"data": ..., "predictions": [...]}``) for one image.

    ``data``: the annotation task's data (build_task_data's fields); ``decision``: its row of the decisions
    table. The data keeps every annotation field and adds ``group_extra``, ``earlier`` and ``refines_task``
    (and ``duplicate_note``, "" when the annotation task had none).
    """
    proposals = set(data.get("proposals", []))
    chosen = [catalogue[index].id for index in decision["chosen_labels"]]
    extras = [class_id for class_id in chosen if class_id not in proposals]
    refined = {**data, EXTRA_GROUP: _extra_options(data, extras, catalogue),
               EARLIER: _earlier_html(decision, catalogue), "refines_task": decision["task_id"],
               # the template shows it; annotation tasks made before the field existed lack it
               "duplicate_note": data.get("duplicate_note") or ""}
    result = prediction_result([class_id for class_id in chosen if class_id in proposals], refined)
    if extras:
        result.append({"from_name": EXTRA_GROUP, "to_name": IMAGE, "type": "choices", "value": {"choices": extras}})
    if decision["annotators"] and not chosen:  # everyone who finished said "none of these"
        result.append({"from_name": NONE_OF_THESE, "to_name": IMAGE, "type": "choices",
                       "value": {"choices": [NONE_OF_THESE_VALUE]}})
    predictions = [{"model_version": MODEL_VERSION, "score": 1.0, "result": result}] if result else []
    return {"data": refined, "predictions": predictions}


@dataclass(frozen=True)
class RefinementChoice:
    """An expert's refinement of one image: class indices (empty: no valid label), the flag, the comment."""

    labels: tuple[int, ...]
    none_of_these: bool
    comment: str


def parse_refinement(result: list[dict], catalogue: Catalogue) -> RefinementChoice:
    """Read a refinement annotation's ``result``: the proposal groups, ``group_extra``, none, the comment."""
    parsed = parse_annotation(result)
    selected = set(parsed.selected)
    for item in result:
        if item.get("from_name") == EXTRA_GROUP:
            selected.update(item.get("value", {}).get("choices", []))
    return RefinementChoice(tuple(sorted(catalogue.index_of(c) for c in selected)), parsed.none_of_these,
                            parsed.comment)


def _read_summary(folder: Path) -> dict:
    path = folder / SUMMARY_FILE
    if not path.is_file():
        raise UserError(f"{path} does not exist; run `multilabelfy disagreements --out {folder}` first")
    return json.loads(path.read_text(encoding="utf-8"))


def needing_refinement(folder: str | os.PathLike) -> list[dict]:
    """Decision rows of the images that need refinement, in manifest order (position, then task id)."""
    rows = [row for row in decision_rows(folder) if row["decision"] == NEEDS_REFINEMENT]
    rows.sort(key=lambda row: (row["position"] is None, row["position"] or 0, row["task_id"]))
    return rows


def place(order: Sequence[str], present: dict[str, set[str]]) -> dict[str, list[str]]:
    """Which new images each annotator gets: images already in someone's project stay there; the others go,
    in ``order``, to whoever has the fewest images so far (ties: the earlier annotator), so counts stay even.
    """
    counts = {annotator: len(images) for annotator, images in present.items()}
    placed = set().union(*present.values()) if present else set()
    new: dict[str, list[str]] = {annotator: [] for annotator in present}
    for image_id in order:
        if image_id in placed:
            continue
        annotator = min(counts, key=counts.__getitem__)  # dicts keep the annotators' order: ties go first
        new[annotator].append(image_id)
        counts[annotator] += 1
    return new


def base_title(source: dict) -> str:
    """The annotation project's title without a batch suffix (``"T (batch 2/7)"`` -> ``"T"``)."""
    titles = source.get("titles") or []
    if titles:
        return _BATCH_SUFFIX.sub("", titles[0])
    projects = source.get("projects") or []
    return f"project {projects[0]}" if projects else "multilabelfy"


def spawn_refinement(client, folder: str | os.PathLike, annotators: Sequence[str], catalogue: Catalogue,
                     title: str | None = None, progress: bool = True) -> dict:
    """Create (or complete) one refinement project per annotator from a ``disagreements`` folder.

    ``client``: a :class:`multilabelfy.labelstudio.client.LabelStudioClient`. Annotators are emails; missing
    Label Studio users are created. ``title``: the base of the projects' titles (default: :func:`base_title`).
    Images already in an annotator's project stay there (see :func:`place`), so re-runs, even after the
    decisions changed, never put an image in two projects. The exports are streamed and tasks imported a
    chunk at a time, so memory does not grow with the number of images; local-files storages are added last
    (every run), which is all the images need to show. Returns the assignment also written to
    ``<folder>/refinement.json``:
    ``{"annotation_projects", "annotators", "projects": [{"annotator", "project", "title", "url", "images",
    "imported_now"}]}``.
    """
    folder = Path(folder)
    annotators = [a.strip() for a in annotators if a.strip()]
    if not annotators or len(set(annotators)) != len(annotators):
        raise UserError("--annotators needs one or more distinct emails, e.g. a@lab.org,b@lab.org")
    summary = _read_summary(folder)
    assignment_path = folder / ASSIGNMENT_FILE
    if assignment_path.is_file():
        earlier = json.loads(assignment_path.read_text(encoding="utf-8")).get("annotators", [])
        dropped = [a for a in earlier if a not in annotators]
        if dropped:
            raise UserError(f"{assignment_path} gave images to {','.join(dropped)}; keep every earlier annotator in "
                            "--annotators (new ones may be added) so that no image goes to two experts")
    rows = needing_refinement(folder)
    by_image = {row["image_id"]: row for row in rows}
    source = summary.get("source", {})
    if not rows:  # every image was agreed: no empty projects
        assignment = {"annotation_projects": source.get("projects") or [], "annotators": annotators, "projects": []}
        write_json(assignment_path, assignment)
        return assignment
    base = title or base_title(source)

    projects: dict[str, dict] = {}
    present: dict[str, set[str]] = {}
    for annotator in annotators:
        client.ensure_user(annotator)
        project_title = refinement_title(base, annotator)
        project = client.find_project(project_title) or client.create_project(
            project_title, load_template(), description=f"Refinement of images of {base!r} by {annotator}.",
            show_collab_predictions=True, model_version=MODEL_VERSION, maximum_annotations=1,
        )
        projects[annotator] = project
        present[annotator] = {task["data"].get("image_id")
                              for task in client.iter_tasks(project["id"], with_annotations=False)}
    owner = {image_id: annotator for annotator, image_ids in place(list(by_image), present).items()
             for image_id in image_ids}

    # Stream the exports (the task data lives there) and import each expert's tasks a chunk at a time.
    source_projects = set(source.get("projects") or [])
    buffers: dict[str, list[dict]] = {annotator: [] for annotator in annotators}
    imported = dict.fromkeys(annotators, 0)

    def flush(annotator: str) -> None:
        if buffers[annotator]:
            client.import_tasks(projects[annotator]["id"], buffers[annotator], progress=False)
            imported[annotator] += len(buffers[annotator])
            bar.update(len(buffers[annotator]))
            buffers[annotator] = []

    with tqdm(total=len(owner), desc="refinement tasks", unit="task", disable=not progress or not owner) as bar:
        for export in source.get("exports", []):
            for task in iter_export(export):
                if task.get("project") is not None:
                    source_projects.add(int(task["project"]))
                row = by_image.get(str(task["data"].get("image_id")))
                if row is None or row["image_id"] not in owner or row["task_id"] != int(task["id"]):
                    continue
                annotator = owner[row["image_id"]]
                buffers[annotator].append(build_refinement_task(task["data"], row, catalogue))
                if len(buffers[annotator]) >= _IMPORT_CHUNK:
                    flush(annotator)
        for annotator in annotators:
            flush(annotator)
    missing = len(owner) - sum(imported.values())
    if missing:
        raise UserError(f"the exports of {folder} lack {missing} tasks of its decisions; run "
                        "`multilabelfy disagreements` again")
    # the images' /data/local-files/ URLs are served only through a storage: give each project the same ones
    storages = {s["path"]: s for p in sorted(source_projects) for s in client.list_local_storages(p)}
    report = []
    for annotator, project in projects.items():
        for storage in storages.values():
            client.ensure_local_storage(project["id"], storage["path"], title=storage.get("title") or "images")
        report.append({"annotator": annotator, "project": project["id"], "title": project["title"],
                       "url": client.project_url(project["id"]),
                       "images": len(present[annotator]) + imported[annotator], "imported_now": imported[annotator]})
    assignment = {"annotation_projects": sorted(source_projects), "annotators": annotators, "projects": report}
    write_json(assignment_path, assignment)
    return assignment
