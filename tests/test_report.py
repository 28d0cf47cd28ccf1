"""``multilabelfy report`` end to end on eight images: every number in summary.json against values computed
here independently with plain loops, the CSVs, the charts, the self-contained HTML, re-runs and bad input."""

import json
import math
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from multilabelfy.scripts import cli

NAMES = ["tabby", "tiger cat", "espresso", "cup", "missile", "rocket", "astronaut", "camera", "horse", "coffee mug"]
# original labels (c0 is a class id, the rest indices; '' = unknown) and the new label sets
ORIGINAL = ["c0", "2", "4", "6", "7", "8", "9", ""]
LABELS = [[0, 1], [2, 3], [], [6], [], [8], [9, 3, 2], [5]]
PHOTOS = {0: "chelsea", 1: "coffee", 2: "rocket", 3: "astronaut"}  # the others' files are missing


@pytest.fixture
def dataset(tmp_path):
    from skimage import data

    (tmp_path / "imgs").mkdir()
    for i, name in PHOTOS.items():
        Image.fromarray(getattr(data, name)()).convert("RGB").save(tmp_path / "imgs" / f"{name}.jpg")
    (tmp_path / "classes.csv").write_text("id,name\n" + "".join(f"c{i},{n}\n" for i, n in enumerate(NAMES)))
    rows = [f"img{i},{label},imgs/{PHOTOS.get(i, f'missing{i}')}.jpg\n"
            for i, label in enumerate(ORIGINAL)]
    # the dataset's own manifest (multilabelfy.dataset's columns: id, label, image)
    (tmp_path / "manifest.csv").write_text("id,label,image\n" + "".join(rows))
    (tmp_path / "labels.json").write_text(json.dumps(LABELS))
    rng = np.random.default_rng(7)
    top = {name: np.stack([rng.permutation(10)[:5] for _ in LABELS]) for name in ("alpha", "bee", "cnet")}
    top["alpha"][:, 0] = [0, 2, 4, 6, 1, 8, 3, 5]  # right on most images, so the models differ
    np.save(tmp_path / "alpha.npy", top["alpha"])
    (tmp_path / "b.csv").write_text("image_id,top1,top2,top3,top4,top5\n" + "".join(
        f"img{i}," + ",".join(map(str, row)) + "\n" for i, row in reversed(list(enumerate(top["bee"])))))
    pq.write_table(pa.table({
        "position": np.arange(len(LABELS)), "image_id": [f"img{i}" for i in range(len(LABELS))],
        "topk_indices": pa.array(top["cnet"].tolist(), pa.list_(pa.int32())),
    }).replace_schema_metadata({"multilabelfy.model": "cnet"}), tmp_path / "proposals.parquet")
    return tmp_path, top


def _run(tmp_path, *extra, out="out"):
    return cli.main(["report", "--labels", str(tmp_path / "labels.json"), "--manifest", str(tmp_path / "manifest.csv"),
                     "--catalogue", str(tmp_path / "classes.csv"), "--out", str(tmp_path / out), *extra])


def _predictions(tmp_path):
    return ["--predictions", str(tmp_path / "alpha.npy"), f"bee={tmp_path / 'b.csv'}",
            str(tmp_path / "proposals.parquet")]


def test_summary_numbers_match_an_independent_computation(dataset):
    tmp_path, top = dataset
    assert _run(tmp_path, *_predictions(tmp_path)) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    original = [int(x[1:]) if x.startswith("c") else int(x) if x else -1 for x in ORIGINAL]

    assert summary["num_images"] == 8
    assert summary["label_count_distribution"] == {"0": 2, "1": 3, "2": 2, "3": 1}
    assert summary["label_count_percent"] == pytest.approx({"0": 25.0, "1": 37.5, "2": 25.0, "3": 12.5})
    assert set(summary["models"]) == {"alpha", "bee", "cnet"}
    xs, ys = [], []
    for name, preds in top.items():
        model = summary["models"][name]
        known = [i for i, label in enumerate(original) if label >= 0]
        valid = [i for i, labels in enumerate(LABELS) if labels]
        top1 = sum(preds[i, 0] == original[i] for i in known) / len(known)
        real = sum(preds[i, 0] in LABELS[i] for i in valid) / len(valid)
        top5 = sum(original[i] in preds[i] for i in known) / len(known)
        assert model["top1"] == pytest.approx(top1)
        assert model["real_accuracy"] == pytest.approx(real)
        assert model["top5"] == pytest.approx(top5)
        for count in range(4):
            group = [i for i in known if len(LABELS[i]) == count]
            p = sum(preds[i, 0] == original[i] for i in group) / len(group)
            assert model["top1_by_label_count"][str(count)] == pytest.approx(p)
            margin = model["margin_by_label_count"][str(count)]
            if len(group) < 2:
                assert margin is None
            else:
                assert margin == pytest.approx(1.96 * math.sqrt(p * (1 - p) / len(group)))
        xs.append(top1)
        ys.append(real)
    slope, intercept = np.polyfit(xs, ys, 1)
    assert summary["regression"]["slope"] == pytest.approx(slope)
    assert summary["regression"]["intercept"] == pytest.approx(intercept)
    assert summary["regression"]["r2"] == pytest.approx(np.corrcoef(xs, ys)[0, 1] ** 2)
    assert summary["models"]["alpha"]["top1"] == pytest.approx(5 / 7)  # the hand-set column: images 0-3, 5 right


def test_csvs_charts_and_a_self_contained_html(dataset):
    tmp_path, _ = dataset
    assert _run(tmp_path, *_predictions(tmp_path)) == 0
    out = tmp_path / "out"
    import pandas as pd

    models = pd.read_csv(out / "models.csv")
    assert models.columns.tolist() == ["model", "top1", "top5", "real_accuracy", "real_top5"]
    assert sorted(models["model"]) == ["alpha", "bee", "cnet"]
    assert pd.read_csv(out / "label_counts.csv")["images"].tolist() == [2, 3, 2, 1]
    zero = pd.read_csv(out / "zero_label_images.csv")
    assert zero["image_id"].tolist() == ["img2", "img4"] and zero["name"].tolist() == ["missile", "camera"]
    agreement = pd.read_csv(out / "class_agreement.csv").set_index("class")
    assert agreement.loc[4, ["images", "kept", "no_label"]].tolist() == [1, 0, 1]
    assert agreement.loc[0, "name"] == "tabby" and agreement.loc[0, "agreement"] == 1.0
    for png in ("label_counts", "real_vs_top1", "top1_by_label_count", "margin_by_label_count", "class_agreement"):
        with Image.open(out / f"{png}.png") as image:
            assert image.format == "PNG" and image.width > 300
    page = (out / "index.html").read_text()
    sources = re.findall(r"src='([^']*)'", page)
    assert sources and all(s.startswith("data:") for s in sources)  # nothing to fetch: the file can be mailed
    assert sum(s.startswith("data:image/png") for s in sources) == 5
    assert sum(s.startswith("data:image/jpeg") for s in sources) == 1  # img2 has a photo, img4 has none
    assert "img2" in page and "ReaL" in page
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_rerun_gives_the_same_files(dataset):
    tmp_path, _ = dataset
    assert _run(tmp_path, *_predictions(tmp_path)) == 0
    first = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if p.suffix in (".json", ".csv")}
    assert _run(tmp_path, *_predictions(tmp_path)) == 0
    second = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if p.suffix in (".json", ".csv")}
    assert first == second and len(first) == 6


def test_labels_only_report_and_comparison(dataset):
    tmp_path, _ = dataset
    other = [[0], [2, 3], [], [6, 7], [4], [8], [9, 3, 2], []]
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert _run(tmp_path, "--compare", str(tmp_path / "other.json")) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["models"] == {}
    # identical: images 1, 2, 5, 6; Jaccard 1/2, 1, 1, 1/2, 0, 1, 1, 0
    assert summary["comparison"]["identical"] == pytest.approx(4 / 8)
    assert summary["comparison"]["mean_jaccard"] == pytest.approx(5 / 8)
    assert (tmp_path / "out" / "comparison_per_class.csv").exists()
    assert not (tmp_path / "out" / "real_vs_top1.png").exists()


def test_rerun_with_other_inputs_removes_what_no_longer_applies(dataset):
    tmp_path, _ = dataset
    (tmp_path / "other.json").write_text(json.dumps(LABELS))
    assert _run(tmp_path, *_predictions(tmp_path), "--compare", str(tmp_path / "other.json")) == 0
    assert (tmp_path / "out" / "real_vs_top1.png").exists()
    assert _run(tmp_path) == 0
    left = {p.name for p in (tmp_path / "out").iterdir()}
    assert "real_vs_top1.png" not in left and "comparison_per_image.csv" not in left
    assert {"summary.json", "index.html", "label_counts.png", "models.csv"} <= left


@pytest.mark.parametrize("break_input, message", [
    (lambda p: (p / "labels.json").unlink(), "labels.json does not exist"),
    (lambda p: np.save(p / "alpha.npy", np.zeros((7, 5), dtype=int)), "alpha.npy has 7 rows but manifest"),
    (lambda p: (p / "manifest.csv").write_text("image_id,label\n" + "".join(f"img{i},3\n" for i in range(7))
                                              + "img7,tabby cat\n"), "row 8: label 'tabby cat'"),
    (lambda p: (p / "labels.json").write_text(json.dumps(LABELS[:-1] + [[10]])), "class index 10 is outside 0..9"),
])
def test_bad_input_is_one_line_and_writes_nothing(dataset, capsys, break_input, message):
    tmp_path, _ = dataset
    break_input(tmp_path)
    assert _run(tmp_path, *_predictions(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("multilabelfy: error: ") and err.count("\n") == 1
    assert re.search(message, err)
    assert not (tmp_path / "out").exists()
