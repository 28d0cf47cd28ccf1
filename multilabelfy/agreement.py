"""Agreement between annotators who each chose a *set* of classes for an image.

Pure statistics, no Label Studio: a label set is a ``frozenset`` of class indices (the empty set means
"none of these fit"). Everything here can be fed one image at a time, so the disagreement stage can
stream an export of millions of annotations and keep only small accumulators in memory.

- :func:`jaccard` and :func:`masi_distance` compare two sets.
- :class:`AlphaAccumulator` computes Krippendorff's alpha with the MASI distance (Passonneau 2006), the
  chance-corrected agreement for set-valued annotations.
- :class:`PairwiseAccumulator` keeps mean pairwise Jaccard, exact-match rate, per annotator pair, and
  counts of confused class pairs (one annotator chose x but not y, the other y but not x).
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from typing import Hashable, Iterable, Sequence

import numpy as np
from scipy import sparse

LabelSet = frozenset  # frozenset[int] of class indices

# Rows of the distinct-set incidence matrix multiplied at once when computing the expected disagreement:
# bounds memory to about block x (distinct sets sharing a class) non-zeros.
_BLOCK_ROWS = 4096


def jaccard(a: LabelSet, b: LabelSet) -> float:
    """|a & b| / |a | b|; two empty sets ("none of these" twice) agree fully: 1.0."""
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def _monotonicity(intersection: int, size_a: int, size_b: int) -> float:
    """MASI's weight: 1 for identical sets, 2/3 when one contains the other, 1/3 for overlap, 0 if disjoint."""
    if intersection == size_a == size_b:
        return 1.0
    if intersection == min(size_a, size_b) and intersection > 0:
        return 2 / 3
    return 1 / 3 if intersection > 0 else 0.0


def masi_distance(a: LabelSet, b: LabelSet) -> float:
    """MASI distance 1 - J(a, b) * M(a, b) in [0, 1]; 0 for equal sets (two empty sets included)."""
    if a == b:
        return 0.0
    inter = len(a & b)
    return 1.0 - jaccard(a, b) * _monotonicity(inter, len(a), len(b))


class AlphaAccumulator:
    """Krippendorff's alpha with the MASI distance, fed one unit (image) at a time.

    ``alpha = 1 - D_o / D_e`` with, over the n pairable values (units with at least two values):
    ``D_o = 1/n * sum_u 1/(m_u - 1) * sum_{i != j in u} delta(v_i, v_j)`` and
    ``D_e = 1/(n (n - 1)) * sum_{c != k} n_c n_k delta(c, k)`` over distinct label sets c, k.
    Memory: one counter entry per distinct label set.
    """

    def __init__(self) -> None:
        self._observed = 0.0  # sum_u 1/(m_u-1) * sum over ordered pairs of distances
        self.value_counts: Counter[LabelSet] = Counter()

    def add_unit(self, values: Sequence[LabelSet]) -> None:
        """Add one image's label sets, one per annotator who finished it; fewer than two are not pairable."""
        m = len(values)
        if m < 2:
            return
        pair_sum = sum(masi_distance(a, b) for a, b in itertools.combinations(values, 2))
        self._observed += 2 * pair_sum / (m - 1)
        self.value_counts.update(values)

    @property
    def n_values(self) -> int:
        return sum(self.value_counts.values())

    def alpha(self) -> float | None:
        """Alpha in (-inf, 1]; ``None`` when no unit has two values; 1.0 when every value is the same set."""
        n = self.n_values
        if n < 2:
            return None
        expected_sum = n * n - _similarity_sum(self.value_counts)
        if expected_sum <= 1e-12 * n * n:
            return 1.0
        observed = self._observed / n
        expected = expected_sum / (n * (n - 1))
        return 1.0 - observed / expected


def _similarity_sum(counts: dict[LabelSet, int]) -> float:
    """``sum_{c, k} n_c n_k (1 - delta(c, k))`` over ordered pairs of distinct sets, diagonal included.

    Only sets that share a class (or are both empty) have a non-zero similarity, so the pairs come
    from a sparse product of the set/class incidence matrix with itself, a block of rows at a time.
    """
    total = float(counts.get(frozenset(), 0)) ** 2
    sets = [s for s in counts if s]
    if not sets:
        return total
    weights = np.array([counts[s] for s in sets], dtype=np.float64)
    sizes = np.array([len(s) for s in sets], dtype=np.int64)
    members = np.fromiter(itertools.chain.from_iterable(sets), dtype=np.int64, count=int(sizes.sum()))
    rows = np.repeat(np.arange(len(sets)), sizes)
    incidence = sparse.csr_matrix(
        (np.ones(len(members), dtype=np.int32), (rows, members)), shape=(len(sets), int(members.max()) + 1)
    )
    transposed = incidence.T.tocsc()
    for start in range(0, len(sets), _BLOCK_ROWS):
        product = (incidence[start:start + _BLOCK_ROWS] @ transposed).tocoo()
        i = product.row + start
        j = product.col
        inter = product.data.astype(np.float64)
        size_i, size_j = sizes[i], sizes[j]
        same = (inter == size_i) & (inter == size_j)
        nested = inter == np.minimum(size_i, size_j)
        weight = np.where(same, 1.0, np.where(nested, 2 / 3, 1 / 3))
        total += float(np.sum(weights[i] * weights[j] * inter / (size_i + size_j - inter) * weight))
    return total


def krippendorff_alpha_masi(units: Iterable[Sequence[LabelSet]]) -> float | None:
    """Krippendorff's alpha with MASI over ``units`` (each: the label sets given to one image)."""
    accumulator = AlphaAccumulator()
    for values in units:
        accumulator.add_unit(values)
    return accumulator.alpha()


class PairwiseAccumulator:
    """Pairwise agreement between annotators of the same image, and which classes they confuse.

    Fed one image at a time with ``{annotator: label set}`` for the annotators who finished it.
    """

    def __init__(self) -> None:
        self.images = 0  # images with at least two finished annotators
        self._jaccard_sum = 0.0  # sum over images of the mean pairwise Jaccard
        self._exact = 0  # images where every pair chose identical sets
        self._pairs: dict[tuple[Hashable, Hashable], list[float]] = defaultdict(lambda: [0, 0.0, 0])
        self.confused: Counter[tuple[int, int]] = Counter()

    def add_image(self, label_sets: dict[Hashable, LabelSet]) -> None:
        if len(label_sets) < 2:
            return
        self.images += 1
        scores = []
        for (ann_a, set_a), (ann_b, set_b) in itertools.combinations(sorted(label_sets.items(), key=_by_key), 2):
            score = jaccard(set_a, set_b)
            scores.append(score)
            stats = self._pairs[(ann_a, ann_b)]
            stats[0] += 1
            stats[1] += score
            stats[2] += set_a == set_b
            for x in set_a - set_b:
                for y in set_b - set_a:
                    self.confused[(min(x, y), max(x, y))] += 1
        self._jaccard_sum += sum(scores) / len(scores)
        self._exact += len(set(label_sets.values())) == 1

    @property
    def mean_jaccard(self) -> float | None:
        """Mean over images of the mean pairwise Jaccard; ``None`` when no image had two annotators."""
        return self._jaccard_sum / self.images if self.images else None

    @property
    def exact_match_rate(self) -> float | None:
        """Share of images (with two or more annotators) where all chose the identical set."""
        return self._exact / self.images if self.images else None

    def per_pair(self) -> list[dict]:
        """One row per annotator pair: ``annotator_a, annotator_b, images, mean_jaccard, exact_match_rate``."""
        return [
            {"annotator_a": a, "annotator_b": b, "images": int(n), "mean_jaccard": total / n,
             "exact_match_rate": exact / n}
            for (a, b), (n, total, exact) in sorted(self._pairs.items(), key=lambda item: _by_key(item))
        ]

    def most_confused(self, top: int = 20) -> list[tuple[tuple[int, int], int]]:
        """The ``top`` class pairs most often split between two annotators, most frequent first."""
        return sorted(self.confused.items(), key=lambda item: (-item[1], item[0]))[:top]


def _by_key(item: tuple) -> str:
    return str(item[0])
