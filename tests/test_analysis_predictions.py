"""Reading model predictions (.npy, .csv, proposals .parquet) aligned to a manifest."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from multilabelfy.analysis.manifest import read_manifest
from multilabelfy.analysis.predictions import parse_spec, read_predictions
from multilabelfy.errors import UserError

TOPK = np.array([[5, 1, 2], [7, 0, 3], [9, 8, 4]])


@pytest.fixture
def manifest(tmp_path):
    (tmp_path / "manifest.csv").write_text("image_id,label\nv/a,5\nv/b,0\nv/c,4\n")
    return read_manifest(tmp_path / "manifest.csv")


def test_npy_in_manifest_order_named_by_file_or_argument(tmp_path, manifest):
    np.save(tmp_path / "resnet50.npy", TOPK)
    preds = read_predictions(str(tmp_path / "resnet50.npy"), manifest, num_classes=10)
    assert preds.name == "resnet50" and preds.topk.tolist() == TOPK.tolist()
    assert read_predictions(f"r50={tmp_path / 'resnet50.npy'}", manifest).name == "r50"


def test_one_dimensional_npy_is_top1(tmp_path, manifest):
    np.save(tmp_path / "m.npy", TOPK[:, 0])
    assert read_predictions(str(tmp_path / "m.npy"), manifest).topk.tolist() == [[5], [7], [9]]


def test_csv_with_ids_is_reordered_and_headerless_csv_is_positional(tmp_path, manifest):
    (tmp_path / "ids.csv").write_text("image_id,top1,top2\nc.jpg,9,8\na.jpg,5,1\nb.jpg,7,0\n")
    assert read_predictions(str(tmp_path / "ids.csv"), manifest).topk.tolist() == TOPK[:, :2].tolist()
    (tmp_path / "plain.csv").write_text("5,1\n7,0\n9,8\n")
    assert read_predictions(str(tmp_path / "plain.csv"), manifest).topk.tolist() == TOPK[:, :2].tolist()
    (tmp_path / "joined.csv").write_text("topk_indices\n5 1 2\n7 0 3\n9 8 4\n")
    assert read_predictions(str(tmp_path / "joined.csv"), manifest).topk.tolist() == TOPK.tolist()


def test_proposals_parquet_sorted_by_position_with_model_name_from_metadata(tmp_path, manifest):
    table = pa.table({
        "position": pa.array([2, 0, 1], pa.int64()),
        "image_id": ["v/c", "v/a", "v/b"],
        "topk_indices": pa.array([TOPK[2].tolist(), TOPK[0].tolist(), TOPK[1].tolist()], pa.list_(pa.int32())),
    }).replace_schema_metadata({"multilabelfy.model": "efficientnet_lite0"})
    pq.write_table(table, tmp_path / "proposals.parquet")
    preds = read_predictions(str(tmp_path / "proposals.parquet"), manifest)
    assert preds.name == "efficientnet_lite0"
    assert preds.topk.tolist() == TOPK.tolist()


def test_parse_spec():
    assert parse_spec("vit=a/b.npy") == ("vit", Path("a/b.npy"))
    assert parse_spec("a/b.npy")[0] is None


@pytest.mark.parametrize("make, message", [
    (lambda p: np.save(p / "x.npy", TOPK[:2]), "has 2 rows but manifest .* has 3 images"),
    (lambda p: np.save(p / "x.npy", TOPK + 10), r"class indices span .* outside 0..9"),
    (lambda p: np.save(p / "x.npy", TOPK.astype(float)), "expected integer class indices"),
    (lambda p: (p / "x.csv").write_text("image_id,top1\nv/a,1\nv/b,2\nv/zz,3\n"), "not in manifest"),
    (lambda p: (p / "x.csv").write_text("top1\n1\ncat\n2\n"), "must be integer class indices"),
    (lambda p: (p / "x.txt").write_text("1\n"), "unknown format"),
])
def test_bad_predictions_are_one_line_user_errors(tmp_path, manifest, make, message):
    make(tmp_path)
    path = next(tmp_path.glob("x.*"))
    with pytest.raises(UserError, match=message) as info:
        read_predictions(str(path), manifest, num_classes=10)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_prediction_file(tmp_path, manifest):
    with pytest.raises(UserError, match="does not exist"):
        read_predictions(str(tmp_path / "gone.npy"), manifest)


def test_proposals_without_rows_for_unreadable_images_count_them_wrong(tmp_path, manifest, caplog):
    pq.write_table(pa.table({
        "position": pa.array([0, 2], pa.int64()), "image_id": ["v/a", "v/c"],
        "topk_indices": pa.array([TOPK[0].tolist(), TOPK[2].tolist()], pa.list_(pa.int32())),
    }), tmp_path / "gappy.parquet")
    preds = read_predictions(str(tmp_path / "gappy.parquet"), manifest, num_classes=10)
    assert preds.topk.tolist() == [TOPK[0].tolist(), [-1, -1, -1], TOPK[2].tolist()]
    assert "no row for 1 of 3 images" in caplog.text
