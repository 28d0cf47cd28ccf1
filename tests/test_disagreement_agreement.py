"""Agreement statistics for set-valued annotations, checked against values computed by hand."""

import random

import pytest

from multilabelfy import agreement
from multilabelfy.agreement import AlphaAccumulator, PairwiseAccumulator, jaccard, krippendorff_alpha_masi, masi_distance

A, B, C = 1, 2, 3
EMPTY = frozenset()


def fs(*items):
    return frozenset(items)


def test_jaccard_and_masi_cases():
    assert jaccard(fs(A), fs(A)) == 1.0
    assert jaccard(fs(A, B), fs(A)) == 0.5
    assert jaccard(EMPTY, EMPTY) == 1.0
    assert jaccard(EMPTY, fs(A)) == 0.0
    assert masi_distance(fs(A, B), fs(A, B)) == 0.0
    assert masi_distance(fs(A, B), fs(A)) == pytest.approx(1 - 0.5 * 2 / 3)  # subset
    assert masi_distance(fs(A, B), fs(B, C)) == pytest.approx(1 - (1 / 3) * (1 / 3))  # overlap
    assert masi_distance(fs(A), fs(B)) == 1.0
    assert masi_distance(EMPTY, EMPTY) == 0.0
    assert masi_distance(EMPTY, fs(A)) == 1.0


def test_alpha_by_hand_two_coders():
    # n = 6 values; {A}: 4, {B}: 1, {A,B}: 1.
    # D_o = 1/6 (0 + 2*1 + 2*2/3) = 5/9; D_e = 2 (4*1 + 4*2/3 + 1*2/3) / 30 = 22/45; alpha = 1 - 25/22.
    units = [[fs(A), fs(A)], [fs(A), fs(B)], [fs(A, B), fs(A)]]
    assert krippendorff_alpha_masi(units) == pytest.approx(-3 / 22)


def test_alpha_by_hand_three_coders_and_none_of_these():
    # n = 7; {A}: 4, {}: 3. D_o = 2/7, D_e = 2*4*3/42 = 4/7, alpha = 0.5. A single-value unit is ignored.
    units = [[fs(A), fs(A), fs(A)], [EMPTY, EMPTY], [fs(A), EMPTY], [fs(B)]]
    assert krippendorff_alpha_masi(units) == pytest.approx(0.5)


def test_alpha_degenerate_cases():
    assert krippendorff_alpha_masi([]) is None
    assert krippendorff_alpha_masi([[fs(A)]]) is None
    assert krippendorff_alpha_masi([[fs(A), fs(A)], [fs(A), fs(A)]]) == 1.0
    assert krippendorff_alpha_masi([[fs(A), fs(A)], [fs(B), fs(B)]]) == 1.0


def test_alpha_matches_nltk_on_random_sets(monkeypatch):
    nltk_agreement = pytest.importorskip("nltk.metrics.agreement")
    nltk_distance = pytest.importorskip("nltk.metrics.distance")
    monkeypatch.setattr(agreement, "_BLOCK_ROWS", 3)  # exercise the blocked sparse product
    rng = random.Random(7)
    units, triples = [], []
    for item in range(60):
        values = [fs(*rng.sample(range(6), rng.randint(1, 3))) for _ in range(rng.randint(1, 3))]
        units.append(values)
        triples += [(f"coder{k}", f"item{item}", v) for k, v in enumerate(values)]
    expected = nltk_agreement.AnnotationTask(data=triples, distance=nltk_distance.masi_distance).alpha()
    assert krippendorff_alpha_masi(units) == pytest.approx(expected)


def test_alpha_accumulator_counts_only_pairable_values():
    acc = AlphaAccumulator()
    acc.add_unit([fs(A)])
    acc.add_unit([fs(A), fs(B)])
    assert acc.n_values == 2
    assert acc.value_counts == {fs(A): 1, fs(B): 1}


def test_pairwise_jaccard_exact_match_and_confused_pairs():
    acc = PairwiseAccumulator()
    acc.add_image({"u1": fs(A), "u2": fs(A)})
    acc.add_image({"u1": fs(A, B), "u2": fs(A, C)})  # J = 1/3; confuses (B, C)
    acc.add_image({"u1": fs(B), "u3": fs(C)})  # J = 0; confuses (B, C)
    acc.add_image({"u1": fs(A)})  # one annotator: not pairable
    assert acc.images == 3
    assert acc.mean_jaccard == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert acc.exact_match_rate == pytest.approx(1 / 3)
    assert acc.most_confused() == [((B, C), 2)]
    pairs = {(row["annotator_a"], row["annotator_b"]): row for row in acc.per_pair()}
    assert pairs[("u1", "u2")]["images"] == 2
    assert pairs[("u1", "u2")]["mean_jaccard"] == pytest.approx(2 / 3)
    assert pairs[("u1", "u2")]["exact_match_rate"] == 0.5
    assert pairs[("u1", "u3")]["mean_jaccard"] == 0.0
