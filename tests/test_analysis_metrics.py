"""Every figure of analysis.metrics against values worked out by hand on a six-image case, and ReaL accuracy
against timm's own evaluator on the real ReaL labels."""

import math

import numpy as np
import pytest

from multilabelfy.analysis import metrics
from multilabelfy.analysis.labelsets import IMAGENET_REAL, label_sets_from_lists, read_label_sets

# six images; the last one's original label is unknown (-1); image 2 has no valid label left
LABELS = np.array([0, 1, 2, 3, 4, -1])
SETS = label_sets_from_lists([[0], [1, 5], [], [3, 6, 7], [2], [8]])
NUM_CLASSES = 13


def _topk(first, second=None):
    """Five ranks: the given first (and second) choices, then classes 10-12 that are in no set."""
    second = second or [9] * 6
    return np.array([[f, s, 10, 11, 12] for f, s in zip(first, second)])


MODELS = {
    "A": _topk([0, 5, 2, 3, 4, 8], second=[9, 1, 9, 9, 2, 9]),
    "B": _topk([9, 1, 9, 6, 2, 9]),
    "C": _topk([0, 1, 2, 7, 9, 0]),
}


def test_label_count_distribution():
    table = metrics.label_count_distribution(SETS.counts())
    assert table["label_count"].tolist() == [0, 1, 2, 3]
    assert table["images"].tolist() == [1, 3, 1, 1]
    assert table["percent"].tolist() == pytest.approx([100 / 6, 50, 100 / 6, 100 / 6])


def test_count_groups_cap_the_tail():
    groups, names = metrics.count_groups(SETS.counts(), cap=2)
    assert groups.tolist() == [1, 2, 0, 2, 1, 1] and names == ["0", "1", "2+"]
    assert metrics.count_groups(np.array([1, 1]), cap=4)[1] == ["0", "1"]


def test_accuracies_per_model_by_hand():
    table = metrics.model_accuracies(MODELS, LABELS, SETS).set_index("model")
    # top-1 over the 5 images with a known label; ReaL over the 5 images with a non-empty set
    assert table.loc["A"].tolist() == pytest.approx([4 / 5, 5 / 5, 4 / 5, 5 / 5])
    assert table.loc["B"].tolist() == pytest.approx([1 / 5, 1 / 5, 3 / 5, 3 / 5])
    assert table.loc["C"].tolist() == pytest.approx([3 / 5, 3 / 5, 3 / 5, 3 / 5])


def test_top5_is_nan_for_top1_only_predictions():
    table = metrics.model_accuracies({"m": MODELS["A"][:, :1]}, LABELS, SETS)
    assert math.isnan(table.loc[0, "top5"]) and math.isnan(table.loc[0, "real_top5"])
    assert table.loc[0, "top1"] == pytest.approx(0.8)


def test_linear_fit_of_real_on_top1_by_hand():
    # points (0.8, 0.8), (0.2, 0.6), (0.6, 0.6): Sxy = 12/225, Sxx = 42/225, Syy = 6/225
    fit = metrics.linear_fit([0.8, 0.2, 0.6], [0.8, 0.6, 0.6])
    assert fit["slope"] == pytest.approx(2 / 7)
    assert fit["intercept"] == pytest.approx(18 / 35)
    assert fit["r2"] == pytest.approx(4 / 7)
    assert fit["n"] == 3


def test_linear_fit_needs_two_distinct_x():
    assert math.isnan(metrics.linear_fit([0.5], [0.4])["slope"])
    assert math.isnan(metrics.linear_fit([0.5, 0.5], [0.4, 0.6])["r2"])
    assert metrics.linear_fit([0.1, float("nan"), 0.3], [0.2, 0.5, 0.4])["n"] == 2


def test_half_width_95():
    assert metrics.half_width_95(0.5, 100) == pytest.approx(1.96 * math.sqrt(0.25 / 100))
    assert metrics.half_width_95(1.0, 10) == 0.0
    assert math.isnan(metrics.half_width_95(1.0, 1))


def test_top1_by_label_count_by_hand():
    table = metrics.top1_by_label_count(MODELS, LABELS, SETS.counts(), cap=2)
    top1 = table.pivot(index="model", columns="label_count", values="top1")
    margin = table.pivot(index="model", columns="label_count", values="margin")
    images = table.drop_duplicates("label_count").set_index("label_count")["images"]
    # group '0': image 2; group '1': images 0 and 4 (image 5 has no original label); group '2+': images 1, 3
    assert images.to_dict() == {"0": 1, "1": 2, "2+": 2}
    assert top1.loc["A"].tolist() == [1.0, 1.0, 0.5]
    assert top1.loc["B"].tolist() == [0.0, 0.0, 0.5]
    assert top1.loc["C"].tolist() == [1.0, 0.5, 0.5]
    assert margin["0"].isna().all()  # n < 2
    assert margin.loc["A", "1"] == 0.0
    assert margin.loc["C", "1"] == pytest.approx(1.96 * math.sqrt(0.25 / 2))
    assert margin.loc["B", "2+"] == pytest.approx(1.96 * math.sqrt(0.25 / 2))


def test_class_agreement_by_hand():
    table = metrics.class_agreement(LABELS, SETS, NUM_CLASSES)
    assert table["class"].tolist() == [2, 4, 0, 1, 3]  # lowest agreement first
    rows = table.set_index("class")
    assert rows.loc[2].tolist() == [1, 0, 1, 0.0]  # images, kept, no_label, agreement
    assert rows.loc[4].tolist() == [1, 0, 0, 0.0]
    assert rows.loc[3].tolist() == [1, 1, 0, 1.0]


def test_compare_label_sets_by_hand():
    other = label_sets_from_lists([[0], [1], [], [3, 6], [2, 4], []])
    per_image, per_class = metrics.compare_label_sets(SETS, other, NUM_CLASSES)
    assert per_image["common"].tolist() == [1, 1, 0, 2, 1, 0]
    assert per_image["identical"].tolist() == [True, False, True, False, False, False]
    assert per_image["jaccard"].tolist() == pytest.approx([1, 1 / 2, 1, 2 / 3, 1 / 2, 0])
    rows = per_class.set_index("class")
    assert rows.index.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert rows.loc[4].tolist() == [0, 1, 0, 0.0]  # in_a, in_b, in_both, jaccard
    assert rows.loc[7].tolist() == [1, 0, 0, 0.0]
    assert rows.loc[6].tolist() == [1, 1, 1, 1.0]


def test_real_accuracy_matches_timm_real_labels_evaluator():
    torch = pytest.importorskip("torch")
    from timm.data.real_labels import RealLabelsImagenet

    real = read_label_sets(IMAGENET_REAL)
    n = 3000
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(n, 1000)).astype(np.float32)
    # make about half the images right: lift one of their ReaL labels to the top
    for i, labels in enumerate(real.labels[:n]):
        if labels and i % 2 == 0:
            logits[i, labels[-1]] += 10.0
    evaluator = RealLabelsImagenet([f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(50_000)], topk=(1, 5))
    evaluator.add_result(torch.from_numpy(logits))
    topk = np.argsort(-logits, axis=1)[:, :5]
    subset = label_sets_from_lists(real.labels[:n])
    ours = {k: 100 * metrics.real_accuracy(topk, subset, k) for k in (1, 5)}
    assert 40 < ours[1] < 60
    assert ours[1] == pytest.approx(evaluator.get_accuracy(1), abs=1e-9)
    assert ours[5] == pytest.approx(evaluator.get_accuracy(5), abs=1e-9)
