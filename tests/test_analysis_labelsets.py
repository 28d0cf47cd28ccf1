"""Reading multi-label sets in every format, aligned to a manifest; the real ReaL file from timm."""

import json
from collections import Counter

import numpy as np
import pytest

from multilabelfy.analysis.labelsets import (IMAGENET_REAL, label_sets_from_lists, read_label_sets,
                                             write_label_sets)
from multilabelfy.analysis.manifest import UNKNOWN, id_stem, read_manifest
from multilabelfy.catalogue import Catalogue, ClassInfo
from multilabelfy.errors import UserError


CATALOGUE = Catalogue([ClassInfo(index=i, id="n01440764" if i == 0 else f"c{i}", synonyms=(f"class {i}",))
                       for i in range(1000)], source="test")


def _manifest(tmp_path, rows="image_id,label\n370/aa11,370\n356/bb22,n01440764\n1/cc33,\n"):
    path = tmp_path / "manifest.csv"
    path.write_text(rows)
    return read_manifest(path, CATALOGUE)


def test_manifest_maps_indices_and_wordnet_ids_and_blank_is_unknown(tmp_path):
    manifest = _manifest(tmp_path)
    assert manifest.image_ids == ["370/aa11", "356/bb22", "1/cc33"]
    assert manifest.labels.tolist() == [370, 0, UNKNOWN]
    assert manifest.images == [None, None, None]


def test_id_table_with_some_image_paths(tmp_path):
    (tmp_path / "m.csv").write_text("image_id,label,image\na,1,imgs/a.jpg\nb,2,\nc,,https://x.org/c.jpg\n")
    manifest = read_manifest(tmp_path / "m.csv")
    assert manifest.images == [str(tmp_path / "imgs" / "a.jpg"), None, "https://x.org/c.jpg"]
    assert manifest.labels.tolist() == [1, 2, UNKNOWN]


def test_manifest_resolves_image_paths_relative_to_its_folder(tmp_path):
    (tmp_path / "manifest.csv").write_text("image,label\nimgs/a.jpg,3\n")
    manifest = read_manifest(tmp_path / "manifest.csv")
    assert manifest.image_ids == ["imgs/a.jpg"]
    assert manifest.images == [str(tmp_path / "imgs" / "a.jpg")]


def test_manifest_unknown_label_is_a_one_line_error_naming_the_row(tmp_path):
    (tmp_path / "m.csv").write_text("image_id,label\na,1\nb,tabby\n")
    with pytest.raises(UserError, match=r"m.csv, row 2: label 'tabby'"):
        read_manifest(tmp_path / "m.csv")


def test_id_stem_reduces_paths_and_image_extensions():
    assert id_stem("370/ab12.jpeg") == "ab12"
    assert id_stem("ab12") == "ab12"
    assert id_stem("dir\\x.v2.JPG") == "x.v2"
    assert id_stem("model.v2") == "model.v2"


def test_real_style_list_follows_the_manifest(tmp_path):
    manifest = _manifest(tmp_path)
    (tmp_path / "labels.json").write_text("[[370, 356], [], [5, 5, 2]]")
    sets = read_label_sets(tmp_path / "labels.json", manifest)
    assert sets.image_ids == manifest.image_ids
    assert sets.labels == [(356, 370), (), (2, 5)]
    assert sets.counts().tolist() == [2, 0, 2]


def test_keyed_multilabelfy_file_is_reordered_to_the_manifest_by_file_stem(tmp_path):
    manifest = _manifest(tmp_path)
    (tmp_path / "v2.json").write_text(json.dumps({"cc33.jpeg": [], "aa11.jpeg": ["370", "356"],
                                                  "bb22.jpeg": ["n01440764"]}))
    sets = read_label_sets(tmp_path / "v2.json", manifest, CATALOGUE)
    assert sets.labels == [(356, 370), (0,), ()]


def test_csv_label_file_with_separators(tmp_path):
    (tmp_path / "labels.csv").write_text("image_id,labels,stage\nx,3 1,agreed\ny,,refined\nz,7;8,refined\n")
    sets = read_label_sets(tmp_path / "labels.csv")
    assert sets.by_id() == {"x": (1, 3), "y": (), "z": (7, 8)}


def test_write_then_read_round_trips(tmp_path):
    sets = label_sets_from_lists([[3, 1], [], [2]])
    write_label_sets(tmp_path / "out" / "labels.json", sets)
    assert json.loads((tmp_path / "out" / "labels.json").read_text()) == [[1, 3], [], [2]]
    assert read_label_sets(tmp_path / "out" / "labels.json").labels == sets.labels


@pytest.mark.parametrize("content, message", [
    ("[[1], [2]]", "lists 2 images but manifest"),
    ('{"aa11.jpeg": [1], "bb22.jpeg": [2], "zz.jpeg": [3]}', "1 image ids are not in manifest"),
    ('{"aa11.jpeg": [1], "bb22.jpeg": [2]}', "has 2 distinct images of the 3"),
    ("[[1], [\"tabby\"], []]", "item 1: label 'tabby' is neither a class index"),
    ("[[1], [1000], []]", "class index 1000 is outside 0..999"),
    ("[[1], 2, []]", "item 1: expected a list"),
    ("{not json", "is not valid JSON"),
])
def test_bad_label_files_are_one_line_user_errors(tmp_path, content, message):
    manifest = _manifest(tmp_path)
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(UserError, match=message) as info:
        read_label_sets(tmp_path / "bad.json", manifest, CATALOGUE)
    assert "\n" not in str(info.value) and "bad.json" in str(info.value)


def test_missing_label_file_names_it(tmp_path):
    with pytest.raises(UserError, match="nothere.json does not exist"):
        read_label_sets(tmp_path / "nothere.json")


def test_real_labels_from_timm_have_the_published_label_count_distribution():
    import pkgutil

    raw = json.loads(pkgutil.get_data("timm.data", "_info/imagenet_real_labels.json"))
    expected = Counter(min(len(set(labels)), 3) for labels in raw)
    sets = read_label_sets(IMAGENET_REAL)
    counts = np.minimum(sets.counts(), 3)
    assert len(sets) == len(raw) == 50_000
    assert sets.image_ids[0] == "ILSVRC2012_val_00000001"
    assert {c: int((counts == c).sum()) for c in range(4)} == dict(expected)
    # ReaL's own figures: 3,163 images lost every label; 39,394 kept exactly one
    assert expected[0] == 3163 and expected[1] == 39394


def test_contains_is_exact_membership():
    sets = label_sets_from_lists([[1, 5], [], [0]])
    positions = np.array([0, 0, 0, 1, 2, 2, 1])
    classes = np.array([1, 5, 2, 1, 0, 6, 999])
    assert sets.contains(positions, classes).tolist() == [True, True, False, False, True, False, False]


def test_imagenetv2_folder_with_multilabelfy_keyed_labels(tmp_path):
    from PIL import Image

    for folder, name in (("370", "aa11"), ("356", "bb22"), ("1", "cc33")):
        (tmp_path / "v2" / folder).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "v2" / folder / f"{name}.jpeg")
    manifest = read_manifest(tmp_path / "v2", CATALOGUE)
    assert manifest.image_ids == ["1/cc33", "356/bb22", "370/aa11"]  # class folders in numeric order
    assert manifest.labels.tolist() == [1, 356, 370]
    (tmp_path / "v2.json").write_text(json.dumps({"aa11.jpeg": ["370", "356"], "bb22.jpeg": ["356"],
                                                  "cc33.jpeg": []}))
    assert read_label_sets(tmp_path / "v2.json", manifest, CATALOGUE).labels == [(), (356,), (356, 370)]


def test_proposals_parquet_serves_as_manifest(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({
        "position": pa.array([1, 0], pa.int64()), "image_id": ["b", "a"], "image": ["/data/b.jpg", "/data/a.jpg"],
        "label": pa.array([None, 7], pa.int64()), "topk_indices": pa.array([[1], [7]], pa.list_(pa.int32())),
    }), tmp_path / "proposals.parquet")
    manifest = read_manifest(tmp_path / "proposals.parquet", CATALOGUE)
    assert manifest.image_ids == ["a", "b"]
    assert manifest.labels.tolist() == [7, UNKNOWN]
    assert manifest.images == ["/data/a.jpg", "/data/b.jpg"]


def test_a_list_follows_imagenet_val_file_numbers_whatever_the_manifest_order(tmp_path):
    # a class-folder layout sorts val files by class, not by number: positions would misalign silently
    (tmp_path / "m.csv").write_text("image_id,label\nn01/ILSVRC2012_val_00000003,1\nn02/ILSVRC2012_val_00000001,2\n"
                                    "n02/ILSVRC2012_val_00000002,2\n")
    manifest = read_manifest(tmp_path / "m.csv")
    (tmp_path / "real.json").write_text("[[10], [20, 21], []]")
    assert read_label_sets(tmp_path / "real.json", manifest).labels == [(), (10,), (20, 21)]


def test_imagenet_real_for_a_subset_of_the_validation_files(tmp_path):
    import pkgutil

    raw = json.loads(pkgutil.get_data("timm.data", "_info/imagenet_real_labels.json"))
    (tmp_path / "m.csv").write_text("image_id\nILSVRC2012_val_00050000.JPEG\nILSVRC2012_val_00000002.JPEG\n")
    sets = read_label_sets(IMAGENET_REAL, read_manifest(tmp_path / "m.csv"))
    assert sets.labels == [tuple(sorted(raw[49_999])), tuple(sorted(raw[1]))]
