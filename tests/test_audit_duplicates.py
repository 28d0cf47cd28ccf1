"""Duplicates on real photos: exact copies (same pixels, other file), near copies (resized, re-encoded JPEG,
cropped, brightened), within a split and across two; the search functions against brute force."""

import io

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from multilabelfy.audit import duplicates as dup
from multilabelfy.catalogue import imagenet_1k
from multilabelfy.dataset import read_dataset

TABBY, TIGER_CAT, ESPRESSO, MISSILE, CAMERA = "n02123045", "n02123159", "n07920052", "n03773504", "n04069434"
SINGLES = ["astronaut", "coins", "moon", "page", "text", "grass", "brick", "clock", "colorwheel", "immunohistochemistry"]


def _photo(name):
    import skimage.data

    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def _jpeg(image, quality=60):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _crop(image, share=0.05):
    w, h = image.size
    return image.crop((int(w * share), int(h * share), int(w * (1 - share)), int(h * (1 - share))))


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    """val: chelsea + an exact copy (BMP, other name) + a resized JPEG under another class (a label conflict),
    coffee + a 5% crop, camera + a re-encoded JPEG, and ten unrelated photos; train: a brightened rocket whose
    original is in val, and an exact copy of val's astronaut."""
    root = tmp_path_factory.mktemp("dup")
    val, train = root / "val", root / "train"
    chelsea, coffee, camera, rocket = (_photo(n) for n in ("chelsea", "coffee", "camera", "rocket"))
    files = {
        val / TABBY / "chelsea.png": chelsea,
        val / TABBY / "chelsea_copy.bmp": chelsea,
        val / TIGER_CAT / "chelsea_small.jpg": chelsea.resize((225, 150)),
        val / ESPRESSO / "coffee.png": coffee,
        val / ESPRESSO / "coffee_crop.png": _crop(coffee),
        val / CAMERA / "camera.png": camera,
        val / CAMERA / "camera_q60.jpg": _jpeg(camera),
        val / MISSILE / "rocket.png": rocket,
        train / MISSILE / "rocket_bright.png": ImageEnhance.Brightness(rocket).enhance(1.2),
        train / CAMERA / "astronaut_again.png": _photo("astronaut"),
    }
    files.update({val / CAMERA / f"{name}.png": _photo(name) for name in SINGLES})
    for path, image in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
    (val / ESPRESSO / "broken.jpg").write_bytes(b"not a jpeg")
    return val, train


@pytest.fixture(scope="module")
def lite0():
    from multilabelfy.models import OFFLINE_LITE0, create_classifier

    return create_classifier("efficientnet_lite0", OFFLINE_LITE0)


@pytest.fixture(scope="module")
def fingerprints(splits, lite0):
    val, train = splits
    return dup.Fingerprints.concat([
        dup.fingerprint_records(read_dataset(folder, imagenet_1k()), name, lite0, batch_size=8, progress=False)
        for name, folder in (("val", val), ("train", train))
    ])


def _groups_as_sets(groups):
    return sorted(sorted(ids) for ids in groups.groupby("group")["image_id"].agg(list))


ASTRONAUT = [f"{CAMERA}/astronaut", f"{CAMERA}/astronaut_again"]
CAMERAS = [f"{CAMERA}/camera", f"{CAMERA}/camera_q60"]
COFFEE = [f"{ESPRESSO}/coffee", f"{ESPRESSO}/coffee_crop"]
ROCKET = [f"{MISSILE}/rocket", f"{MISSILE}/rocket_bright"]
CHELSEA = [f"{TABBY}/chelsea", f"{TABBY}/chelsea_copy", f"{TIGER_CAT}/chelsea_small"]
EXPECTED_GROUPS = sorted([ASTRONAUT, CAMERAS, COFFEE, ROCKET, CHELSEA])


def test_every_planted_copy_is_found_and_nothing_else(fingerprints):
    assert fingerprints.errors and fingerprints.errors[0][0] == f"{ESPRESSO}/broken"
    pairs, groups = dup.find_duplicates(fingerprints)
    assert _groups_as_sets(groups) == EXPECTED_GROUPS
    kinds = {(a, b): k for a, b, k in pairs[["image_a", "image_b", "kind"]].itertuples(index=False)}
    # pixel-identical files in other formats are exact; every transformed copy is near
    assert kinds[(f"{TABBY}/chelsea", f"{TABBY}/chelsea_copy")] == "exact"
    assert kinds[(f"{CAMERA}/astronaut", f"{CAMERA}/astronaut_again")] == "exact"
    assert (pairs["kind"] == "exact").sum() == 2
    near = pairs[pairs["kind"] == "near"]
    assert (near["cosine"] >= dup.DEFAULT_MIN_COSINE).any() and (near["hamming"] >= 0).all()


def test_groups_carry_labels_conflicts_and_splits(fingerprints):
    pairs, groups = dup.find_duplicates(fingerprints)
    cats = groups[groups["image_id"].str.contains("chelsea")]
    tabby, tiger = imagenet_1k().index_of(TABBY), imagenet_1k().index_of(TIGER_CAT)
    assert cats["conflict"].all() and set(cats["group_labels"]) == {f"{tabby} {tiger}"}
    assert set(cats["kind"]) == {"near"} and set(cats["group_size"]) == {3}
    rocket = groups[groups["image_id"].str.contains("rocket")]
    assert rocket["cross_split"].all() and set(rocket["split"]) == {"val", "train"} and not rocket["conflict"].any()
    assert groups.loc[groups["image_id"].str.contains("coffee"), "cross_split"].eq(False).all()
    summary = dup.duplicate_summary(pairs, groups, fingerprints)
    assert summary == {"images": 20, "unreadable": 1, "splits": ["train", "val"], "groups": 5,
                       "images_in_groups": 11, "removable": 6, "exact_pairs": 2, "near_pairs": len(pairs) - 2,
                       "exact_groups": 1, "conflicting_groups": 1, "cross_split_groups": 2}


def test_cross_only_keeps_pairs_between_splits(fingerprints):
    pairs, groups = dup.find_duplicates(fingerprints, cross_only=True)
    assert pairs["cross_split"].all() and len(pairs) == 2
    assert _groups_as_sets(groups) == sorted([ASTRONAUT, ROCKET])


def test_hashes_alone_find_all_but_the_crop(splits):
    val, _ = splits
    hashes = dup.fingerprint_records(read_dataset(val, imagenet_1k()), "val", None, progress=False)
    assert hashes.embeddings is None
    pairs, groups = dup.find_duplicates(hashes)
    assert pairs["cosine"].isna().all()
    # pHash survives resizing, re-encoding and brightness, not a crop: that one needs the embeddings
    assert _groups_as_sets(groups) == sorted([CAMERAS, CHELSEA])


def test_notes_for_label_studio(fingerprints):
    _, groups = dup.find_duplicates(fingerprints)
    names = [c.name for c in imagenet_1k()]
    notes = dup.duplicate_notes(groups, names)
    note = notes[f"{TABBY}/chelsea"]
    assert note["duplicate_of"] == [f"{TABBY}/chelsea_copy", f"{TIGER_CAT}/chelsea_small"]
    assert note["duplicate_conflict"] and note["duplicate_labels"] == ["tabby", "tiger cat"]
    assert "tabby, tiger cat" in note["duplicate_note"] and note["duplicate_note"].startswith("possible near")
    assert notes[f"{CAMERA}/astronaut"]["duplicate_kind"] == "exact"
    assert f"{CAMERA}/moon" not in notes


def test_pixel_hash_ignores_file_format_but_not_pixels():
    photo = _photo("coffee")
    png, bmp = io.BytesIO(), io.BytesIO()
    photo.save(png, "PNG")
    photo.save(bmp, "BMP")
    assert dup.pixel_hash(Image.open(png)) == dup.pixel_hash(Image.open(bmp))
    assert dup.pixel_hash(_jpeg(photo, 95)) != dup.pixel_hash(photo)


def test_phash_pairs_match_brute_force():
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 2**63, size=400, dtype=np.uint64)
    # plant close hashes: flip 1..6 random bits of some
    for target, source in enumerate(rng.choice(400, 60, replace=False)):
        flipped = hashes[source]
        for bit in rng.choice(64, rng.integers(1, 7), replace=False):
            flipped ^= np.uint64(1) << np.uint64(bit)
        hashes[target] = flipped
    hashes[5] = hashes[6] = hashes[7] = np.uint64(0)  # a bucket of identical hashes
    for limit in (0, 2, 4):
        distance = dup.hamming(hashes[:, None], hashes[None, :])
        want = {(a, b) for a, b in zip(*np.nonzero(distance <= limit)) if a < b}
        i, j = dup.phash_pairs(hashes, limit, block=3)
        assert set(zip(i.tolist(), j.tolist())) == want and len(want) >= 3


def test_exact_search_matches_brute_force_with_small_blocks(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    monkeypatch.setattr(dup, "_BLOCK_BYTES", 4 * 300 * 7)  # 7 rows per block
    indices, sims = dup.nearest_neighbours(x, 5, "exact")
    s = x @ x.T
    np.fill_diagonal(s, -np.inf)
    assert np.array_equal(indices, np.argsort(-s, axis=1, kind="stable")[:, :5])
    assert np.allclose(sims, np.take_along_axis(s, indices, axis=1))
    # with a bar, only neighbours above it, the rest -1 / -inf
    bar = float(np.quantile(s[np.isfinite(s)], 0.995))
    high_indices, high_sims = dup.nearest_neighbours(x, 5, "exact", min_similarity=bar)
    passed = sims >= bar
    assert passed.any() and (~passed).any()
    assert np.array_equal(high_indices, np.where(passed, indices, -1))
    assert np.allclose(high_sims[passed], sims[passed]) and np.isneginf(high_sims[~passed]).all()


def test_faiss_index_finds_planted_near_duplicates():
    pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5000, 32)).astype(np.float32)
    x[4000:] = x[:1000] + 0.05 * rng.normal(size=(1000, 32)).astype(np.float32)  # 1000 planted copies
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    i, j = dup.embedding_pairs(x, 0.95, neighbours=3, method="faiss")
    found = set(zip(i.tolist(), j.tolist()))
    planted = {(k, k + 4000) for k in range(1000)}
    assert len(found & planted) >= 0.95 * len(planted)
    exact = set(zip(*(a.tolist() for a in dup.embedding_pairs(x, 0.95, neighbours=3, method="exact"))))
    assert found <= exact and exact == planted


def test_read_duplicate_notes_keys_by_id_and_refuses_what_would_be_ambiguous(tmp_path):
    from multilabelfy.errors import UserError

    head = "group,image_id,split,label,image,group_size,group_labels,conflict,cross_split,kind\n"
    (tmp_path / "groups.csv").write_text(head + "0,a/1,val,3,x,2,3,False,False,exact\n"
                                                "0,a/2,val,3,y,2,3,False,False,exact\n")
    assert dup.read_duplicate_notes(tmp_path) == {"a/1": "possible exact duplicate of a/2",
                                                  "a/2": "possible exact duplicate of a/1"}
    # the same id in both splits: which image of the project would the note be about?
    (tmp_path / "groups.csv").write_text(head + "0,a/1,val,3,x,2,3,False,True,exact\n"
                                                "0,a/1,train,3,y,2,3,False,True,exact\n")
    with pytest.raises(UserError, match="'a/1' is in two splits"):
        dup.read_duplicate_notes(tmp_path)
    (tmp_path / "groups.csv").write_text("image_id,label\na,1\n")
    with pytest.raises(UserError, match="lacks columns conflict, group, kind, split"):
        dup.read_duplicate_notes(tmp_path)
    with pytest.raises(UserError, match="has no groups.csv"):
        dup.read_duplicate_notes(tmp_path / "nowhere")
