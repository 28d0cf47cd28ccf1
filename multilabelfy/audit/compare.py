"""Consolidate several relabelings of the same images (ours, ReaL, Multilabelfy's ImageNetV2 file, any
``{image_id: [labels]}`` JSON): where they agree, which differ, and the subset every source labels identically.

Sources are read by ``multilabelfy.analysis.labelsets.read_label_sets`` and matched by image id stem
(``analysis.manifest.id_stem``: ``'n01440764/ILSVRC2012_val_00000293'``, ``'ILSVRC2012_val_00000293.JPEG'`` and
``'ILSVRC2012_val_00000293'`` are one image). Only images present in every source are compared; each source's
coverage is reported. Two empty sets (no valid label) agree.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from multilabelfy.analysis.labelsets import LabelSets, label_sets_from_lists
from multilabelfy.analysis.manifest import id_stem
from multilabelfy.analysis.metrics import compare_label_sets
from multilabelfy.errors import UserError


@dataclass
class Consolidation:
    """The comparison of S sources over the M images they all label.

    ``per_image``: M rows: ``image_id``, one column per source (labels as space-separated indices),
    ``agree`` (all sets identical), ``distinct_sets``, ``majority`` (the most common set; ties: the first
    source's), ``differing`` (sources whose set is not the majority's, comma-separated).
    ``per_class``: one row per class any source uses: ``class``, ``in_<source>`` (images with it), ``in_any``,
    ``in_all``, ``agree`` (images with it in any source whose sets are all identical), ``all_rate`` =
    in_all / in_any, ``agree_rate`` = agree / in_any. Sorted by ``agree_rate``, lowest first.
    ``pairwise``: one row per pair of sources: ``source_a``, ``source_b``, ``identical`` (share of images),
    ``mean_jaccard``. ``coverage``: per source: ``source``, ``images``, ``compared`` (in every source).
    ``consistent``: ``{image_id: [labels]}`` of the images every source labels identically.
    """

    sources: list[str]
    per_image: pd.DataFrame
    per_class: pd.DataFrame
    pairwise: pd.DataFrame
    coverage: pd.DataFrame
    consistent: dict[str, list[int]]

    def summary(self) -> dict:
        return {
            "sources": self.sources,
            "images_compared": int(len(self.per_image)),
            "all_agree": int(self.per_image["agree"].sum()),
            "all_agree_rate": float(self.per_image["agree"].mean()) if len(self.per_image) else None,
            "coverage": dict(zip(self.coverage["source"], self.coverage["images"].astype(int).tolist())),
            "differing_most": Counter(s for text in self.per_image["differing"] for s in text.split(", ") if s)
            .most_common(),
        }


def _text(labels: tuple[int, ...]) -> str:
    return " ".join(map(str, labels))


def consolidate(sources: Sequence[LabelSets], names: Sequence[str] | None = None,
                num_classes: int | None = None) -> Consolidation:
    """Compare ``sources`` (two or more label sets of the same images, any order or coverage).

    ``names``: one short name per source (default: the sources' file names). ``num_classes``: the catalogue's
    size (default: 1 + the largest class used).

    Example::

        >>> a = label_sets_from_lists([[1], [2, 3]], ["x", "y"]); b = label_sets_from_lists([[1], [3]], ["y", "x"])
        >>> consolidate([a, b], ["ours", "real"]).per_image[["image_id", "agree", "differing"]].values.tolist()
        [['x', False, 'real'], ['y', False, 'real']]
    """
    if len(sources) < 2:
        raise UserError("compare needs at least two label files")
    names = list(names) if names is not None else [s.source for s in sources]
    if len(set(names)) != len(names):
        raise UserError(f"two label files have the same name ({Counter(names).most_common(1)[0][0]}); "
                        "name them apart with NAME=PATH")
    keyed = []
    for source, name in zip(sources, names):
        stems = {}
        for image_id, labels in zip(source.image_ids, source.labels):
            stem = id_stem(image_id)
            if stem in stems:
                raise UserError(f"label file {source.source} ({name}) lists image {stem!r} twice")
            stems[stem] = (image_id, labels)
        keyed.append(stems)
    common = [stem for stem in keyed[0] if all(stem in k for k in keyed[1:])]
    if not common:
        raise UserError(f"the label files {', '.join(names)} share no image id; a positional list (ReaL style) "
                        "needs --manifest to name its images")
    sets = [[k[stem][1] for stem in common] for k in keyed]
    ids = [keyed[0][stem][0] for stem in common]

    agree, distinct, majority, differing = [], [], [], []
    for per_source in zip(*sets):
        counts = Counter(per_source)
        top = max(counts.values())
        best = next(s for s in per_source if counts[s] == top)  # ties: the first source's set
        agree.append(len(counts) == 1)
        distinct.append(len(counts))
        majority.append(_text(best))
        differing.append(", ".join(n for n, s in zip(names, per_source) if s != best))
    per_image = pd.DataFrame({"image_id": ids, **{n: [_text(s) for s in col] for n, col in zip(names, sets)},
                              "agree": agree, "distinct_sets": distinct, "majority": majority,
                              "differing": differing})

    used = [c for col in sets for s in col for c in s]
    size = num_classes if num_classes is not None else 1 + max(used, default=-1)
    # (image, class) memberships as keys image * size + class: each source's keys are distinct, so a key's
    # count over all sources says in how many sources the image has the class (no dense S x M x C array)
    keys = [np.fromiter((i * size + c for i, labels in enumerate(col) for c in labels), dtype=np.int64)
            for col in sets]
    unique, times = np.unique(np.concatenate(keys), return_counts=True)
    classes, images = unique % max(size, 1), unique // max(size, 1)
    agree_mask = np.array(agree, dtype=bool)
    per_class = pd.DataFrame({
        "class": np.arange(size),
        **{f"in_{n}": np.bincount(k % max(size, 1), minlength=size) for k, n in zip(keys, names)},
        "in_any": np.bincount(classes, minlength=size),
        "in_all": np.bincount(classes[times == len(sets)], minlength=size),
        "agree": np.bincount(classes[agree_mask[images]], minlength=size),
    })
    per_class = per_class[per_class["in_any"] > 0].copy()
    per_class["all_rate"] = per_class["in_all"] / per_class["in_any"]
    per_class["agree_rate"] = per_class["agree"] / per_class["in_any"]
    per_class = per_class.sort_values(["agree_rate", "class"], kind="stable").reset_index(drop=True)

    aligned = [label_sets_from_lists(col, ids, name) for col, name in zip(sets, names)]
    pairwise = []
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            images, _ = compare_label_sets(aligned[a], aligned[b], size)
            pairwise.append({"source_a": names[a], "source_b": names[b], "identical": images["identical"].mean(),
                             "mean_jaccard": images["jaccard"].mean()})
    coverage = pd.DataFrame({"source": names, "images": [len(s) for s in sources], "compared": len(ids)})
    consistent = {i: list(s) for i, s, ok in zip(ids, sets[0], agree) if ok}
    return Consolidation(list(names), per_image, per_class, pd.DataFrame(pairwise), coverage, consistent)
