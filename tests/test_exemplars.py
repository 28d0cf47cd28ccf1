"""Exemplars: images the model agrees with come first; the JSON is {class_id: [images]}."""

import json

import numpy as np
import pandas as pd

from multilabelfy.catalogue import load_catalogue
from multilabelfy.exemplars import pick_exemplars
from multilabelfy.scripts import cli

CATALOGUE = load_catalogue()


def row(position, label, indices, probs):
    rank = indices.index(label) + 1 if label in indices else 50
    return {"position": position, "image_id": f"i{position}", "image": f"/pool/{position}.jpg", "label": label,
            "topk_indices": np.array(indices, np.int32), "topk_probs": np.array(probs, np.float32),
            "label_rank": rank}


def test_agreeing_confident_images_first_and_at_most_per_class():
    proposals = pd.DataFrame([
        row(0, 281, [282, 281], [0.6, 0.3]),  # model says tiger cat: after every agreeing image
        row(1, 281, [281, 282], [0.5, 0.4]),
        row(2, 281, [281, 285], [0.9, 0.05]),
        row(3, 281, [1, 2], [0.5, 0.4]),  # label outside the top-k: last
        row(4, 967, [967, 968], [0.8, 0.1]),
        row(5, 281, [282, 285], [0.6, 0.3]),
    ])
    proposals.loc[5, "label"] = None  # unlabelled pool images are ignored
    exemplars = pick_exemplars(proposals, CATALOGUE, per_class=3)
    assert exemplars == {"n02123045": ["/pool/2.jpg", "/pool/1.jpg", "/pool/0.jpg"], "n07920052": ["/pool/4.jpg"]}
    assert pick_exemplars(proposals, CATALOGUE, per_class=10)["n02123045"][-1] == "/pool/3.jpg"


def test_exemplars_command_on_real_proposals(photo_dataset, tmp_path, capsys):
    pool = tmp_path / "pool.parquet"
    assert cli.main(["propose", str(photo_dataset), "--model", "test_resnet", "--weights", "random",
                     "--out", str(pool), "--workers", "0", "--no-progress"]) == 0
    out = tmp_path / "exemplars.json"
    assert cli.main(["exemplars", str(pool), "--out", str(out), "--per-class", "10"]) == 0
    assert "exemplars for 4 of 1000 classes" in capsys.readouterr().out
    exemplars = json.loads(out.read_text())
    assert exemplars["n02123045"] == [str((photo_dataset / "n02123045" / "chelsea.png").resolve())]
    assert sorted(exemplars) == ["n02123045", "n03773504", "n04069434", "n07920052"]
