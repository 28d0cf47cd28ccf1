"""Label-issue ranking on hand-made top-k probabilities whose thresholds and kinds are worked out by hand."""

import numpy as np
import pandas as pd
import pytest

from multilabelfy.audit import suspects
from multilabelfy.errors import UserError

# 3 classes, top-2 per image. Labels: images 0-3 class 0, 4-5 class 1, 6 class 2, 7 unknown.
INDICES = np.array([[0, 1], [0, 2], [1, 0], [1, 2], [1, 0], [0, 1], [2, 1], [0, 1]])
PROBS = np.array([[.90, .05], [.80, .15], [.85, .10], [.60, .30], [.70, .25], [.45, .40], [.50, .45], [.9, .1]])
LABELS = np.array([0, 0, 0, 0, 1, 1, 2, -1])
IDS = [f"img{i}" for i in range(8)]


def test_self_confidence_uses_topk_or_its_upper_bound():
    p, in_topk = suspects.self_confidence(INDICES, PROBS, np.maximum(LABELS, 0))
    # image 3 (label 0, top-2 = classes 1, 2): bound min(p_k = .30, 1 - .90 = .10) = .10
    assert np.allclose(p, [.90, .80, .10, .10, .70, .40, .50, .90])
    assert in_topk.tolist() == [True, True, True, False, True, True, True, True]


def test_thresholds_are_mean_self_confidence_with_a_fallback():
    p, _ = suspects.self_confidence(INDICES[:7], PROBS[:7], LABELS[:7])
    thresholds = suspects.class_thresholds(LABELS[:7], p, 4)
    assert np.allclose(thresholds, [(.9 + .8 + .1 + .1) / 4, (.7 + .4) / 2, .5, np.mean([.475, .55, .5])])
    # classes below min_images take the mean of the others
    assert np.allclose(suspects.class_thresholds(LABELS[:7], p, 3, min_images=2), [.475, .55, .5125])


def test_ranking_kinds_and_order():
    table = suspects.rank_label_issues(INDICES, PROBS, LABELS, 3, IDS)
    # t = [.475, .55, .5]. img2: label .10, class 1 at .85 >= .55 -> wrong; img3: label .10, class 1 .60 -> wrong;
    # img5: label .40 < .55, class 0 .45 < .475 -> unsure; img6: label .50 >= .5, class 1 .45 -> ok;
    # img1: label .80, class 2 .15 < .5 -> ok. Wrong by margin (.75, .50); the ok ones (margin 0) by label_prob.
    assert table["image_id"].tolist() == ["img2", "img3", "img5", "img6", "img4", "img1", "img0"]
    assert table["kind"].astype(str).tolist() == ["wrong", "wrong", "unsure", "ok", "ok", "ok", "ok"]
    assert table["rank"].tolist() == list(range(1, 8))
    wrong = table.set_index("image_id").loc["img2"]
    assert wrong["suggested"] == 1 and wrong["suggested_prob"] == pytest.approx(.85)
    assert wrong["margin"] == pytest.approx(.75) and wrong["threshold"] == pytest.approx(.475)
    assert not table.set_index("image_id").loc["img3", "label_in_topk"]
    assert "img7" not in set(table["image_id"])  # no original label, nothing to doubt
    assert suspects.issue_counts(table) == {"wrong": 2, "incomplete": 0, "unsure": 1, "ok": 4}


def test_incomplete_when_label_and_another_class_are_both_confident():
    def kinds(indices, probs, labels):
        table = suspects.rank_label_issues(np.array(indices), np.array(probs), np.array(labels), 2)
        return dict(zip(table["image_id"], table["kind"].astype(str))), table

    # t0 = .5, t1 = (.5 + .4) / 2 = .45. Image 0: label .5 ok and class 1 at .45 >= .45 -> incomplete (ranked
    # first); image 1: label .5 ok, class 0 .45 < .5 -> ok; image 2: label .4 < .45, class 0 .3 < .5 -> unsure.
    found, table = kinds([[0, 1], [1, 0], [1, 0]], [[.5, .45], [.5, .45], [.4, .3]], [0, 1, 1])
    assert found == {"0": "incomplete", "1": "ok", "2": "unsure"} and table["image_id"].iloc[0] == "0"
    assert table.set_index("image_id").loc["0", "suggested"] == 1
    # the same split with t0 = .5, t1 = .48: the other class stays below its threshold everywhere -> ok
    found, _ = kinds([[0, 1], [1, 0]], [[.5, .45], [.48, .47]], [0, 1])
    assert found == {"0": "ok", "1": "ok"}


def test_priority_selection_and_order():
    table = suspects.rank_label_issues(INDICES, PROBS, LABELS, 3, IDS)
    assert suspects.priority_image_ids(table) == ["img2", "img3"]
    assert suspects.priority_image_ids(table, top=1) == ["img2"]
    assert suspects.priority_image_ids(table, kinds=("unsure",)) == ["img5"]
    assert suspects.order_by_priority(["img0", "img3", "img7", "img5"], table, kinds=("wrong", "unsure")) == \
        ["img3", "img5", "img0", "img7"]
    with pytest.raises(UserError, match="unknown suspect kind 'bad'"):
        suspects.priority_image_ids(table, kinds=("bad",))


def test_prioritise_proposals_rows():
    table = suspects.rank_label_issues(INDICES, PROBS, LABELS, 3, IDS)
    proposals = pd.DataFrame({"image_id": IDS, "position": range(8)})
    assert suspects.prioritise(proposals, table)["image_id"].tolist() == \
        ["img2", "img3", "img0", "img1", "img4", "img5", "img6", "img7"]
    assert suspects.prioritise(proposals, table, top=1)["position"].tolist() == [2]
    assert suspects.prioritise(proposals, table, top=0).empty
    with pytest.raises(UserError, match="names none of the proposals' images"):
        suspects.prioritise(proposals.assign(image_id=[f"other{i}" for i in range(8)]), table)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_ranking_round_trip(tmp_path, suffix):
    table = suspects.add_class_names(suspects.rank_label_issues(INDICES, PROBS, LABELS, 3, IDS), ["a", "b", "c"])
    assert table.loc[0, ["label_name", "top1_name", "suggested_name"]].tolist() == ["a", "b", "b"]
    suspects.write_ranking(table, tmp_path / f"r{suffix}")
    back = suspects.read_ranking(tmp_path / f"r{suffix}")
    assert back["image_id"].tolist() == table["image_id"].tolist()
    assert suspects.priority_image_ids(back) == ["img2", "img3"]
    assert [p.name for p in tmp_path.iterdir()] == [f"r{suffix}"]  # no temp file left


def test_bad_ranking_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        suspects.read_ranking(tmp_path / "none.csv")
    pd.DataFrame({"image_id": ["a"]}).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(UserError, match="lacks the columns kind, rank"):
        suspects.read_ranking(tmp_path / "x.csv")
    with pytest.raises(UserError, match="must end in .csv or .parquet"):
        suspects.write_ranking(suspects.rank_label_issues(INDICES, PROBS, LABELS, 3), tmp_path / "r.txt")
