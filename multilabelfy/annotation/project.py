"""Annotation projects: proposals (and exemplars) in, Label Studio projects with one task per image out.

``create_annotation_projects`` checks every input first (so that a bad file creates nothing), then for each
project finds it by title or creates it from ``project_templates/annotation.xml``, sets the overlap, adds
local-files storages for local images, and imports only the images the project does not hold yet (by
``image_id``), in chunks. Running it again therefore adds nothing twice, and a run that was cut off resumes.

Batches: ``batches=K > 1`` splits the images, in manifest order, into K contiguous near-equal parts, one
project each, titled ``"<title> (batch i/K)"``. The split depends only on the proposals file, so re-runs
put every image into the same project.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from multilabelfy.annotation.tasks import GROUPS, build_task_data
from multilabelfy.catalogue import Catalogue
from multilabelfy.errors import UserError
from multilabelfy.labelstudio.client import LabelStudioClient
from multilabelfy.labelstudio.local_files import local_files_url

logger = logging.getLogger(__name__)

TEMPLATE = "annotation.xml"
DOCUMENT_ROOT_ENV = "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"


def annotation_template() -> str:
    """The labeling config of annotation projects (``project_templates/annotation.xml``)."""
    return resources.files("multilabelfy.project_templates").joinpath(TEMPLATE).read_text(encoding="utf-8")


def read_exemplars(path: str | os.PathLike) -> dict[str, list[str]]:
    """An exemplars JSON file: ``{class_id: [image path or URL, ...]}``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"exemplars file {path} does not exist; make it with `multilabelfy exemplars` or leave it out")
    try:
        exemplars = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"exemplars file {path} is not valid JSON ({error})") from None
    if not isinstance(exemplars, dict) or not all(
        isinstance(images, list) and all(isinstance(image, str) for image in images) for images in exemplars.values()
    ):
        raise UserError(f"exemplars file {path} must be a JSON object {{class_id: [image path or URL, ...]}}")
    return exemplars


def _is_url(image: str) -> bool:
    return image.startswith(("http://", "https://", "/data/"))


class ImageLinker:
    """Turns dataset image paths into URLs a logged-in browser can load from Label Studio.

    URLs (``http(s)://``, or ``/data/...`` already on the server) stay as they are. A local file becomes
    ``/data/local-files/?d=<path relative to the document root>``; Label Studio serves it only for projects
    holding a local-files storage over a folder that contains it (``storage_folders``).
    """

    def __init__(self, document_root: str | os.PathLike | None):
        self.document_root = Path(document_root).absolute() if document_root else None
        self.local: list[Path] = []

    def url(self, image: str, what: str) -> str:
        """``what`` names the image in errors (e.g. ``"image cats/001 of proposals.parquet"``)."""
        if _is_url(image):
            return image
        path = Path(image).absolute()
        if self.document_root is None:
            raise UserError(
                f"{what} is the local file {path}; tell us the Label Studio document root that holds it with "
                f"--document-root or {DOCUMENT_ROOT_ENV} (the server must run with the same variable and "
                "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true), or use image URLs"
            )
        if not path.is_relative_to(self.document_root):
            raise UserError(
                f"{what} ({path}) is outside the Label Studio document root {self.document_root}; move it under "
                f"that folder or start Label Studio with {DOCUMENT_ROOT_ENV} set to a folder above it"
            )
        if path.parent == self.document_root:
            raise UserError(
                f"{what} ({path}) lies directly in the document root {self.document_root}; Label Studio serves "
                "only files in its subfolders: move the images into a subfolder"
            )
        if not path.is_file():
            raise UserError(f"{what} ({path}) does not exist")
        self.local.append(path)
        return local_files_url(path.relative_to(self.document_root).as_posix())

    def storage_folders(self) -> list[Path]:
        """Folders to register as local-files storages: the parents of the local files, merged upwards so that
        no folder is inside another, and never the document root itself (Label Studio refuses it)."""
        folders = sorted({path.parent for path in self.local})
        kept: list[Path] = []
        for folder in folders:
            if not any(folder.is_relative_to(outer) for outer in kept):
                kept.append(folder)
        if len(kept) > 20:  # many class folders: one storage over their common parent instead
            common = Path(os.path.commonpath(kept))
            kept = [common] if common != self.document_root else kept
        return kept


@dataclass
class ProjectOutcome:
    """What ``create_annotation_projects`` did for one project."""

    title: str
    project_id: int
    url: str
    created: bool  # False when a project with this title already existed
    imported: int  # tasks added now
    already_present: int  # images of this project found in it from an earlier run


def batch_titles(title: str, batches: int) -> list[str]:
    if batches < 1:
        raise UserError(f"--batches must be at least 1, not {batches}")
    return [title] if batches == 1 else [f"{title} (batch {i}/{batches})" for i in range(1, batches + 1)]


def build_tasks(
    proposals: pd.DataFrame,
    catalogue: Catalogue,
    linker: ImageLinker,
    exemplars: dict[str, list[str]] | None = None,
    source: str = "proposals",
    show_original_label: bool = False,
    duplicate_notes: Mapping[str, str] | None = None,
) -> list[dict]:
    """One import item (``{"data": ...}``) per proposals row, in manifest order; checks every image and exemplar.

    ``duplicate_notes``: image id -> ``duplicate_note`` (``audit.duplicates.read_duplicate_notes``); others get "".

    Exemplar paths are linked once per class. Extra task fields: ``position`` (manifest order) and
    ``proposal_probs`` (the model's probabilities of the proposals, same order).
    """
    exemplar_urls = {
        class_id: [linker.url(image, f"exemplar {image} of class {class_id}") for image in images]
        for class_id, images in (exemplars or {}).items()
    }
    duplicated = proposals.image_id[proposals.image_id.duplicated()]
    if len(duplicated):
        raise UserError(f"{source}: image id {duplicated.iloc[0]!r} occurs more than once; image ids must be unique")
    items = []
    for row in proposals.sort_values("position", kind="stable").itertuples(index=False):
        what = f"image {row.image_id} of {source}"
        label = None if pd.isna(row.label) else int(row.label)
        indices = np.asarray(row.topk_indices).tolist()
        if label is not None and not 0 <= label < len(catalogue) or any(not 0 <= i < len(catalogue) for i in indices):
            raise UserError(f"{what}: class index outside catalogue {catalogue.source}; pass the matching --catalogue")
        try:
            data = build_task_data(
                linker.url(row.image, what), str(row.image_id), label, indices, catalogue, exemplar_urls,
                extra={"position": int(row.position),
                       "proposal_probs": [round(float(p), 6) for p in np.asarray(row.topk_probs)]},
                show_original_label=show_original_label,
                duplicate_note=(duplicate_notes or {}).get(str(row.image_id), ""),
            )
        except ValueError as error:
            raise UserError(f"{source}: {error}") from None
        items.append({"data": data})
    return items


def split_batches(items: Sequence[dict], batches: int) -> list[list[dict]]:
    """Contiguous near-equal parts, in order (the first ``len % batches`` parts hold one more)."""
    size, larger = divmod(len(items), batches)
    bounds = np.cumsum([0] + [size + (i < larger) for i in range(batches)])
    return [list(items[start:end]) for start, end in zip(bounds[:-1], bounds[1:])]


def create_annotation_projects(
    client: LabelStudioClient,
    proposals: pd.DataFrame,
    catalogue: Catalogue,
    title: str,
    exemplars: dict[str, list[str]] | None = None,
    annotators_per_image: int = 2,
    batches: int = 1,
    document_root: str | os.PathLike | None = None,
    show_original_label: bool = False,
    source: str = "proposals",
    chunk_size: int = 500,
    duplicate_notes: Mapping[str, str] | None = None,
    progress: bool = True,
) -> list[ProjectOutcome]:
    """Create (or complete) the annotation project(s) for ``proposals``; idempotent. See the module docstring."""
    if annotators_per_image < 1:
        raise UserError(f"--annotators-per-image must be at least 1, not {annotators_per_image}")
    titles = batch_titles(title, batches)
    if len(proposals) < batches:
        raise UserError(f"{source} holds {len(proposals)} images, fewer than --batches {batches}")
    linker = ImageLinker(document_root)
    items = build_tasks(proposals, catalogue, linker, exemplars, source, show_original_label, duplicate_notes)
    folders = linker.storage_folders()
    config = annotation_template()

    existing = {batch_title: client.find_project(batch_title) for batch_title in titles}
    for batch_title, project in existing.items():
        if project is not None and not all(f'name="{group}"' in project.get("label_config", "") for group in GROUPS):
            raise UserError(
                f"Label Studio project {project['id']} is titled {batch_title!r} but is not a Multilabelfy annotation "
                "project (its labeling config lacks the proposal groups); choose another --title"
            )

    outcomes = []
    for batch_title, batch in zip(titles, split_batches(items, batches)):
        project = existing[batch_title]
        created = project is None
        if created:
            project = client.create_project(
                batch_title, config, description=f"Multilabelfy annotation of {len(batch)} images from {source}",
                show_skip_button=True, show_collab_predictions=True, enable_empty_annotation=False,
            )
        client.set_overlap(project["id"], annotators_per_image)
        for folder in folders:
            client.ensure_local_storage(project["id"], folder)
        present = {task["data"].get("image_id") for task in client.iter_tasks(project["id"], with_annotations=False)}
        missing = [item for item in batch if item["data"]["image_id"] not in present]
        client.import_tasks(project["id"], missing, chunk_size=chunk_size, progress=progress)
        outcomes.append(ProjectOutcome(batch_title, project["id"], client.project_url(project["id"]), created,
                                       imported=len(missing), already_present=len(batch) - len(missing)))
        logger.info("%s: %d tasks imported, %d already there", batch_title, len(missing), len(batch) - len(missing))
    return outcomes
