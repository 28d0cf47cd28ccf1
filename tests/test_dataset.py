"""Datasets: class folders and manifests, stable ids, labels through the catalogue, per-image errors."""

import pandas as pd
import pytest
import torch
from PIL import Image

from multilabelfy.catalogue import load_catalogue
from multilabelfy.dataset import ImageDataset, ImageRecord, collate_images, load_image, read_dataset
from multilabelfy.errors import UserError

CATALOGUE = load_catalogue()


def test_wordnet_class_folders_give_ids_labels_and_order(photo_dataset):
    records = read_dataset(photo_dataset, CATALOGUE)
    assert [r.image_id for r in records] == [
        "n02123045/chelsea", "n03773504/rocket", "n04069434/camera", "n07920052/coffee",
    ]
    assert [r.position for r in records] == [0, 1, 2, 3]
    assert [r.label for r in records] == [281, 657, 759, 967]
    assert records[0].image == str((photo_dataset / "n02123045" / "chelsea.png").resolve())


def test_imagenetv2_index_folders_sort_as_numbers(tmp_path):
    for index in ("10", "2", "999"):
        (tmp_path / index).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / index / "a.jpeg")
    records = read_dataset(tmp_path, CATALOGUE)
    assert [(r.image_id, r.label) for r in records] == [("2/a", 2), ("10/a", 10), ("999/a", 999)]


def test_folder_not_in_the_catalogue_is_named(tmp_path):
    (tmp_path / "kittens").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "kittens" / "a.png")
    with pytest.raises(UserError, match=r"class folder .*kittens is neither a class id nor an index"):
        read_dataset(tmp_path, CATALOGUE)


def test_csv_manifest_with_ids_urls_relative_paths_and_optional_labels(tmp_path):
    (tmp_path / "img").mkdir()
    pd.DataFrame({
        "image": ["img/a.jpg", "https://example.org/b.jpg", "img/c.jpg"],
        "label": ["n02123045", "", "967"],
        "id": ["a", "b", "c"],
    }).to_csv(tmp_path / "m.csv", index=False)
    records = read_dataset(tmp_path / "m.csv", CATALOGUE)
    assert records == [
        ImageRecord(0, "a", str(tmp_path / "img" / "a.jpg"), 281),
        ImageRecord(1, "b", "https://example.org/b.jpg", None),
        ImageRecord(2, "c", str(tmp_path / "img" / "c.jpg"), 967),
    ]


def test_parquet_manifest_with_integer_labels_and_ids_from_paths(tmp_path):
    pd.DataFrame({"image": ["/x/1.jpg", "/x/2.jpg"], "label": pd.array([5, None], dtype="Int64")}).to_parquet(
        tmp_path / "m.parquet")
    records = read_dataset(tmp_path / "m.parquet", CATALOGUE)
    assert [(r.image_id, r.label) for r in records] == [("/x/1.jpg", 5), ("/x/2.jpg", None)]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"path": ["a.jpg"]}, "needs an 'image' column"),
        ({"image": ["a.jpg", "b.jpg"], "label": ["1", "n00000000"]}, r"row 2: label 'n00000000' is neither"),
        ({"image": ["a.jpg", "a.jpg"]}, "image id 'a.jpg' occurs twice"),
    ],
)
def test_bad_manifest_names_the_row_and_the_fix(tmp_path, table, message):
    pd.DataFrame(table).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(UserError, match=message):
        read_dataset(tmp_path / "m.csv", CATALOGUE)


def test_missing_dataset_is_one_line(tmp_path):
    with pytest.raises(UserError, match=r"dataset .*nowhere does not exist; pass a folder"):
        read_dataset(tmp_path / "nowhere", CATALOGUE)


def test_images_become_rgb_and_broken_ones_become_reasons(photo_dataset, tmp_path):
    assert load_image(str(photo_dataset / "n04069434" / "camera.png")).mode == "RGB"  # a grayscale photo
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    truncated = tmp_path / "truncated.jpg"
    full = photo_dataset / "n07920052" / "coffee.jpg"
    truncated.write_bytes(full.read_bytes()[:2000])
    records = [
        ImageRecord(0, "ok", str(full), 967),
        ImageRecord(1, "broken", str(broken), None),
        ImageRecord(2, "truncated", str(truncated), 1),
        ImageRecord(3, "missing", str(tmp_path / "gone.jpg"), 2),
    ]
    dataset = ImageDataset(records, lambda image: torch.zeros(3, 4, 4))
    batch = collate_images([dataset[i] for i in range(len(records))])
    assert batch.positions.tolist() == [0] and batch.labels.tolist() == [967] and batch.pixels.shape == (1, 3, 4, 4)
    reasons = dict(batch.failed)
    assert sorted(reasons) == [1, 2, 3]
    assert reasons[1].startswith("UnidentifiedImageError")
    assert reasons[2].startswith("OSError") and "truncated" in reasons[2]
    assert reasons[3].startswith("FileNotFoundError")


def test_images_in_the_root_are_unlabelled(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "loose.png")
    (tmp_path / "n02123045").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "n02123045" / "cat.png")
    records = read_dataset(tmp_path, CATALOGUE)
    assert [(r.image_id, r.label) for r in records] == [("loose", None), ("n02123045/cat", 281)]


def test_urls_are_downloaded_and_http_errors_become_reasons(photo_dataset):
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(photo_dataset))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert load_image(f"{base}/n07920052/coffee.jpg").size == (600, 400)
        dataset = ImageDataset([ImageRecord(0, "gone", f"{base}/nope.jpg", None)], lambda image: torch.zeros(1))
        position, pixels, label, reason = dataset[0]
        assert pixels is None and reason.startswith("HTTPError: 404")
    finally:
        server.shutdown()
        server.server_close()
