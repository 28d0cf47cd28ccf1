"""Exemplar images per class for the annotation UI, picked from a labelled pool's proposals.

An exemplar should show its class plainly, so a pool image is preferred when the model agrees with its label:
first the images whose label is the model's top-1, most confident first, then the rest by the probability of
their label (0 when it is outside the top-k) and its rank. The pool should not hold the images being annotated.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from multilabelfy.catalogue import Catalogue


def pick_exemplars(proposals: pd.DataFrame, catalogue: Catalogue, per_class: int = 10) -> dict[str, list[str]]:
    """``{class_id: [image, ...]}`` with up to ``per_class`` images per class, best first.

    ``proposals``: a proposals table (``store.read_proposals``) of the pool; rows without a label are ignored.
    Classes come in catalogue order; a class without labelled pool images is absent. Images are the
    ``image`` column (absolute paths or URLs).
    """
    pool = proposals[proposals.label.notna()].copy()
    pool["label"] = pool.label.astype(np.int64)
    pool["own_prob"] = [
        float(probs[indices == label][0]) if (indices == label).any() else 0.0
        for indices, probs, label in zip(pool.topk_indices, pool.topk_probs, pool.label)
    ]
    pool["disagrees"] = pool.label_rank != 1
    pool = pool.sort_values(["label", "disagrees", "own_prob", "label_rank", "position"],
                            ascending=[True, True, False, True, True], kind="stable")
    chosen = pool.groupby("label", sort=True).head(per_class)
    return {
        catalogue[int(label)].id: group.image.tolist()
        for label, group in chosen.groupby("label", sort=True)
    }
