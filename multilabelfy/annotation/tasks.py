"""The annotation template's data contract: task data in, predictions for it, annotation results out.

``project_templates/annotation.xml`` shows one image and its proposals as four ``Choices`` groups of five,
each fed by its own task field (dynamic choices), so one template serves any dataset and catalogue.
A choice's value is the catalogue class **id** (a WordNet id for ImageNet-1k); its ``html`` shows the
class's synonyms, definition (on hover) and a scrollable strip of exemplar thumbnails that open full
size in a new tab. The field names below are the ``name``s of the template's tags: change both together.

Used by ``create-project`` (task data), the ML backend (task data for tasks that arrive without it, and
predictions) and the disagreement and refinement stages (``parse_annotation``).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Iterable, Sequence

from multilabelfy.catalogue import Catalogue

IMAGE = "image"  # the Image tag and the task field with the image URL
GROUP_SIZE = 5
GROUPS = ("group_1", "group_2", "group_3", "group_4")  # Choices tags and the task fields that feed them
MAX_PROPOSALS = GROUP_SIZE * len(GROUPS)
NONE_OF_THESE = "none"  # the Choices tag of the way out
NONE_OF_THESE_VALUE = "none_of_these"
COMMENT = "comment"  # the TextArea tag
# Keys 1..0 then q..p: one per proposal, in rank order, all on the keyboard's top two rows.
HOTKEYS = "1234567890qwertyuiop"
NONE_OF_THESE_HOTKEY = "n"


def _option_html(rank: int, info, exemplar_urls: Sequence[str]) -> str:
    """A choice's label: rank, name, the other synonyms, the definition on hover, the exemplar strip."""
    name, others = info.name, info.synonyms[1:]
    parts = [
        f'<span class="mlf-option" title="{html.escape(info.definition)}">',
        f'<span class="mlf-rank">{rank}</span> <b class="mlf-name">{html.escape(name)}</b>',
    ]
    if others:
        parts.append(f'<span class="mlf-synonyms">, {html.escape(", ".join(others))}</span>')
    if exemplar_urls:
        thumbs = "".join(
            f'<a href="{html.escape(url)}" target="_blank" rel="noopener">'
            f'<img src="{html.escape(url)}" alt="{html.escape(name)} example {number}" loading="lazy"/></a>'
            for number, url in enumerate(exemplar_urls, start=1)
        )
        parts.append(f'<span class="mlf-strip">{thumbs}</span>')
    parts.append("</span>")
    return "".join(parts)


def build_task_data(
    image_url: str,
    image_id: str,
    original_label: int | None,
    proposal_indices: Sequence[int],
    catalogue: Catalogue,
    exemplars: dict[str, list[str]] | None = None,
    extra: dict | None = None,
    show_original_label: bool = False,
    duplicate_note: str = "",
) -> dict:
    """The ``data`` of one annotation task.

    Args:
        image_url: what the browser loads (``/data/local-files/?d=...`` or an http(s) URL).
        image_id: the dataset's stable image id.
        original_label: the dataset's label as a class index, or None when unknown.
        proposal_indices: class indices, most probable first; at most 20 (4 groups of 5).
        catalogue: resolves indices to ids, synonyms and definitions.
        exemplars: class id -> exemplar image URLs shown beside that class (missing ids show none).
        extra: further fields to keep with the task (e.g. ``proposal_probs``); they must not clash.
        show_original_label: fill ``original_label_hint`` (shown above the proposals); off by default so that
            annotators are not anchored on the dataset's label.
        duplicate_note: one line shown above the proposals, e.g. "possible near duplicate of ..." (from
            ``audit.duplicates.read_duplicate_notes``); "" shows nothing.

    Returns:
        ``{"image", "image_id", "original_label" (class id or None), "original_label_index",
        "original_label_name", "original_label_hint" ("" unless shown), "duplicate_note" ("" when none),
        "proposals" (class ids in rank order),
        "group_1".."group_4"}``; each group is a
        list of up to five options ``{"value": class id, "html": label, "hotkey": key}``, empty when there are
        fewer proposals.
    """
    indices = [int(index) for index in proposal_indices]
    if len(indices) > MAX_PROPOSALS:
        raise ValueError(f"image {image_id}: {len(indices)} proposals, the template shows at most {MAX_PROPOSALS}")
    if len(set(indices)) != len(indices):
        raise ValueError(f"image {image_id}: proposals repeat a class: {indices}")
    exemplars = exemplars or {}
    infos = [catalogue[index] for index in indices]
    options = [
        {"value": info.id, "html": _option_html(rank, info, exemplars.get(info.id, [])), "hotkey": HOTKEYS[rank - 1]}
        for rank, info in enumerate(infos, start=1)
    ]
    original = catalogue[int(original_label)] if original_label is not None else None
    data = {
        IMAGE: image_url,
        "image_id": image_id,
        "original_label": original.id if original else None,
        "original_label_index": original.index if original else None,
        "original_label_name": original.name if original else None,
        "original_label_hint": f"Dataset label: {original.name}" if original and show_original_label else "",
        # always present, even empty: Label Studio refuses tasks lacking a field the template references
        "duplicate_note": duplicate_note,
        "proposals": [info.id for info in infos],
    }
    for number, group in enumerate(GROUPS):
        data[group] = options[number * GROUP_SIZE:(number + 1) * GROUP_SIZE]
    clashes = set(data) & set(extra or {})
    if clashes:
        raise ValueError(f"image {image_id}: extra fields {sorted(clashes)} would overwrite the template's fields")
    data.update(extra or {})
    return data


def prediction_result(selected_class_ids: Iterable[str], task_data: dict) -> list[dict]:
    """Result items that pre-check ``selected_class_ids`` in the groups of ``task_data`` that hold them.

    For a prediction (``{"result": ..., "model_version": ..., "score": ...}``) or an annotation.
    Raises ValueError for an id that is not among the task's options: Label Studio would accept it silently.
    """
    selected = list(dict.fromkeys(selected_class_ids))
    placed: set[str] = set()
    result = []
    for group in GROUPS:
        values = [option["value"] for option in task_data.get(group, []) if option["value"] in selected]
        placed.update(values)
        if values:
            result.append({"from_name": group, "to_name": IMAGE, "type": "choices", "value": {"choices": values}})
    missing = [class_id for class_id in selected if class_id not in placed]
    if missing:
        raise ValueError(f"image {task_data.get('image_id')}: {missing} are not options of this task")
    return result


@dataclass(frozen=True)
class ParsedAnnotation:
    """What one annotator said about one image.

    ``selected``: the class ids ticked (in any group); ``none_of_these``: the way out was ticked;
    ``comment``: the comment box ("" when empty).
    """

    selected: frozenset[str]
    none_of_these: bool
    comment: str

    def selected_indices(self, catalogue: Catalogue) -> frozenset[int]:
        return frozenset(catalogue.index_of(class_id) for class_id in self.selected)


def parse_annotation(result: list[dict]) -> ParsedAnnotation:
    """Read an annotation's ``result`` list (as exported) made with the annotation template."""
    selected: set[str] = set()
    none_of_these = False
    comments: list[str] = []
    for item in result:
        name, value = item.get("from_name"), item.get("value", {})
        if name in GROUPS:
            selected.update(value.get("choices", []))
        elif name == NONE_OF_THESE:
            none_of_these = NONE_OF_THESE_VALUE in value.get("choices", [])
        elif name == COMMENT:
            comments += [text.strip() for text in value.get("text", []) if text.strip()]
    return ParsedAnnotation(frozenset(selected), none_of_these, "\n".join(comments))
