"""Overlapping classes on hand-made proposals: a synonym pair, a nested pair, a co-occurring pair, clean classes."""

import numpy as np
import pandas as pd
import pytest

from multilabelfy.audit import classes as cls

NAMES = ["tabby", "tiger cat", "car wheel", "sports car", "canoe", "paddle", "espresso", "missile"]


def _proposals():
    """(labels, indices, probs) of 80 images, top-3 each (the third class always a clean one at .01)."""
    rows = []

    def add(label, count, first, second, p1, p2):
        third = 7 if 7 not in (first, second) else 6
        rows.extend([(label, [first, second, third], [p1, p2, .01])] * count)

    add(0, 6, 0, 1, .6, .35)  # tabby: 6 of 10 right, 4 called tiger cat
    add(0, 4, 1, 0, .55, .4)
    add(1, 5, 1, 0, .6, .35)  # tiger cat: 5 of 10 right, 5 called tabby
    add(1, 5, 0, 1, .5, .45)
    add(2, 7, 3, 2, .7, .25)  # car wheel: 7 of 10 called sports car
    add(2, 3, 2, 3, .6, .3)
    add(3, 10, 3, 2, .9, .05)  # sports car: never called car wheel
    add(4, 10, 4, 5, .6, .3)  # canoe: always right, paddle probable beside it
    add(5, 10, 5, 4, .8, .15)
    add(6, 10, 6, 0, .95, .02)  # clean
    add(7, 10, 7, 6, .97, .01)
    labels = np.array([r[0] for r in rows])
    return labels, np.array([r[1] for r in rows]), np.array([r[2] for r in rows])


def test_confusion_rates_by_hand():
    labels, indices, probs = _proposals()
    top1, mass, together, images = cls.confusion_rates(labels, indices, probs, 8, min_prob=0.1)
    assert images.tolist() == [10] * 8
    assert top1[0, 1] == pytest.approx(.4) and top1[1, 0] == pytest.approx(.5) and top1[2, 3] == pytest.approx(.7)
    assert np.allclose(top1.sum(axis=1), 1)
    assert mass[0, 1] == pytest.approx((6 * .35 + 4 * .55) / 10) and mass[4, 5] == pytest.approx(.3)
    # canoe images: canoe .6 and paddle .3 both >= .1 on all 10; espresso images: tabby .02 < .1
    assert together[4, 5] == 1 and together[6, 0] == 0 and together[3, 2] == 0


def test_pairs_are_named_by_the_heuristic():
    labels, indices, probs = _proposals()
    top1, mass, together, images = cls.confusion_rates(labels, indices, probs, 8)
    pairs = cls.overlapping_pairs(top1, together, images)
    found = {(a, b): r for a, b, r in pairs[["class_a", "class_b", "relation"]].itertuples(index=False)}
    assert found == {(0, 1): "synonym", (2, 3): "nested", (4, 5): "co-occurring"}
    row = pairs.set_index("relation").loc["synonym"]
    assert row["strength"] == pytest.approx(.4) and row["b_to_a"] == pytest.approx(.5)
    # a stricter symmetry turns the tabby / tiger cat pair into a nested one (tiger cat -> tabby, the larger way)
    strict = cls.overlapping_pairs(top1, together, images, symmetry=0.9)
    assert strict.loc[strict["relation"] == "nested", ["class_a", "class_b"]].values.tolist() == [[2, 3], [1, 0]]
    assert cls.overlapping_pairs(top1, together, images, min_confusion=.8, min_together=1.1).empty


def test_groups_and_dendrogram(tmp_path):
    labels, indices, probs = _proposals()
    top1, mass, together, images = cls.confusion_rates(labels, indices, probs, 8)
    pairs = cls.overlapping_pairs(top1, together, images)
    groups = cls.overlapping_groups(mass, pairs, min_affinity=0.2)
    members = groups.groupby("group")["class"].agg(list).tolist()
    assert sorted(members) == [[0, 1], [2, 3], [4, 5]]
    # a high bar keeps only the pair the model mixes up most (tabby / tiger cat: mass .43 + .5)
    assert cls.overlapping_groups(mass, pairs, min_affinity=0.8)["class"].tolist() == [0, 1]
    assert cls.overlapping_groups(mass, pairs.iloc[:0]).empty
    cls.plot_dendrogram(mass, groups["class"].tolist(), NAMES, tmp_path / "d.png")
    from PIL import Image

    assert Image.open(tmp_path / "d.png").size[0] > 400


def test_unknown_labels_are_left_out():
    labels, indices, probs = _proposals()
    with_unknown = np.concatenate([labels, [-1, -1]])
    top1, *_ = cls.confusion_rates(with_unknown, np.vstack([indices, indices[:2]]),
                                   np.vstack([probs, probs[:2]]), 8)
    assert top1[0, 1] == pytest.approx(.4)
    assert isinstance(cls.overlapping_pairs(top1, np.zeros((8, 8)), np.full(8, 10)), pd.DataFrame)
