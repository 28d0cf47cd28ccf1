"""Model selection: ReaL accuracy as timm computes it, reference alignment, ranking end to end."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from multilabelfy.analysis.labelsets import label_sets_from_lists
from multilabelfy.catalogue import load_catalogue
from multilabelfy.dataset import ImageRecord, read_dataset
from multilabelfy.errors import UserError
from multilabelfy.models import OFFLINE_LITE0
from multilabelfy.scripts import cli
from multilabelfy.selection import Candidate, parse_candidates, rank_models, reference_sets

CATALOGUE = load_catalogue()


def test_ranking_matches_timms_real_evaluator(tmp_path):
    from timm.data.real_labels import RealLabelsImagenet

    rng = np.random.default_rng(0)
    n = 200
    labels = rng.integers(0, 10, size=n)
    # ReaL sets: mostly the original label plus 0-2 others; every tenth image has no valid label
    real = [[] if i % 10 == 0 else sorted({int(labels[i]), *rng.integers(0, 10, size=rng.integers(0, 3)).tolist()})
            for i in range(n)]
    (tmp_path / "real.json").write_text(json.dumps(real))
    filenames = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(n)]
    logits = {name: torch.from_numpy(rng.normal(size=(n, 10)) + bias * np.eye(10)[labels])
              for name, bias in (("weak", 0.5), ("strong", 3.0))}
    predictions = {name: out.topk(5, dim=1).indices.numpy() for name, out in logits.items()}

    ranking = rank_models(predictions, labels, label_sets_from_lists(real))
    assert ranking.model.tolist() == ["strong", "weak"]
    for name, out in logits.items():
        timm_real = RealLabelsImagenet(filenames, real_json=str(tmp_path / "real.json"))
        timm_real.add_result(out)
        row = ranking.set_index("model").loc[name]
        assert row.real_accuracy == pytest.approx(timm_real.get_accuracy(1) / 100)
        assert row.real_top5 == pytest.approx(timm_real.get_accuracy(5) / 100)
        assert row.top1 == pytest.approx(np.mean(predictions[name][:, 0] == labels))


def test_real_json_list_is_keyed_by_imagenet_val_file_name(tmp_path):
    # class folders reorder val images, so item i of real.json belongs to ILSVRC2012_val_<i+1>, not position i
    records = [ImageRecord(0, "n02123045/ILSVRC2012_val_00000003", "/a", 281),
               ImageRecord(1, "n07920052/ILSVRC2012_val_00000001", "/b", 967)]
    (tmp_path / "real.json").write_text(json.dumps([[967], [], [281, 282]]))
    sets = reference_sets(records, str(tmp_path / "real.json"), CATALOGUE)
    assert sets.labels == [(281, 282), (967,)]


def test_imagenet_real_from_timm_covers_val_names():
    records = [ImageRecord(0, "ILSVRC2012_val_00000002", "/a", 795), ImageRecord(1, "ILSVRC2012_val_00000001", "/b", 65)]
    assert reference_sets(records, "imagenet-real", CATALOGUE).labels == [(795, 970), ()]


def test_list_reference_for_another_dataset_is_positional_and_must_fit(tmp_path):
    records = [ImageRecord(0, "a/x", "/x", 1), ImageRecord(1, "b/y", "/y", 2)]
    (tmp_path / "ref.json").write_text(json.dumps([[1], [2, 3]]))
    assert reference_sets(records, str(tmp_path / "ref.json"), CATALOGUE).labels == [(1,), (2, 3)]
    (tmp_path / "short.json").write_text(json.dumps([[1]]))
    with pytest.raises(UserError, match="lists 1 images but the dataset has 2"):
        reference_sets(records, str(tmp_path / "short.json"), CATALOGUE)
    (tmp_path / "keyed.json").write_text(json.dumps({"x.jpg": [1]}))
    with pytest.raises(UserError, match="no labels for 1 of the 2 images \\(first: 'b/y'\\)"):
        reference_sets(records, str(tmp_path / "keyed.json"), CATALOGUE)


def test_candidates_with_and_without_weights():
    assert parse_candidates("resnet50, efficientnet_lite0=/w/l0.pth") == [
        Candidate("resnet50", None), Candidate("efficientnet_lite0", "/w/l0.pth")]
    with pytest.raises(UserError, match="names a model twice"):
        parse_candidates("resnet50,resnet50")


def test_select_model_ranks_real_weights_above_random_ones(photo_dataset, tmp_path, capsys):
    reference = {"chelsea.png": ["281", "282", "285"], "coffee.jpg": ["967"], "rocket.jpg": ["657"], "camera.png": []}
    (tmp_path / "reference.json").write_text(json.dumps(reference))
    out = tmp_path / "ranking.csv"
    argv = ["select-model", "--models", f"test_resnet=random,efficientnet_lite0={OFFLINE_LITE0}",
            "--dataset", str(photo_dataset), "--reference", str(tmp_path / "reference.json"),
            "--out", str(out), "--workers", "0", "--no-progress"]
    assert cli.main(argv) == 0
    assert f"best by ReaL accuracy: efficientnet_lite0={OFFLINE_LITE0}" in capsys.readouterr().out
    ranking = pd.read_csv(out)
    assert ranking.model.tolist() == [f"efficientnet_lite0={OFFLINE_LITE0}", "test_resnet=random"]
    best = ranking.iloc[0]
    assert best.real_accuracy == 1.0  # chelsea, coffee, rocket right; camera has no valid label and is left out
    assert best.top1 >= 0.75 and ranking.iloc[1].real_accuracy < 1.0
    assert len(read_dataset(photo_dataset, CATALOGUE)) == 4
