"""`multilabelfy propose` end to end: Parquet contract, errors file, resume, idempotence, one-line errors."""

import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from multilabelfy.catalogue import load_catalogue
from multilabelfy.dataset import read_dataset
from multilabelfy.errors import UserError
from multilabelfy.models import OFFLINE_LITE0, RANDOM, create_classifier
from multilabelfy.proposals import store
from multilabelfy.proposals.run import run_proposals
from multilabelfy.scripts import cli


@pytest.fixture
def dataset_with_broken_image(photo_dataset, tmp_path):
    root = tmp_path / "dataset"
    shutil.copytree(photo_dataset, root)
    (root / "n07920052" / "broken.jpg").write_bytes(b"\xff\xd8 this is no jpeg")
    return root


@pytest.fixture(scope="module")
def tiny():
    return create_classifier("test_resnet", RANDOM)


def test_propose_with_offline_lite0_writes_the_contract(dataset_with_broken_image, tmp_path, capsys):
    out = tmp_path / "proposals.parquet"
    argv = ["propose", str(dataset_with_broken_image), "--model", "efficientnet_lite0", "--weights", OFFLINE_LITE0,
            "--out", str(out), "--workers", "1", "--batch-size", "2", "--chunk-size", "2"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr()
    assert "proposals for 4 of 5 images; 1 unreadable" in printed.out
    assert "proposals: 100%" in printed.err and "5/5" in printed.err and "unreadable=1" in printed.err  # progress bar

    table = store.read_proposals(out)
    assert list(table.columns) == store.SCHEMA.names
    assert pq.read_schema(out).remove_metadata() == store.SCHEMA
    assert table.image_id.tolist() == ["n02123045/chelsea", "n03773504/rocket", "n04069434/camera", "n07920052/coffee"]
    assert table.position.tolist() == [0, 1, 2, 4]  # position 3 is broken.jpg, sorted before coffee.jpg
    names = {row.image_id: [load_catalogue()[i].name for i in row.topk_indices[:3]] for row in table.itertuples()}
    assert names["n02123045/chelsea"] == ["tabby", "tiger cat", "Egyptian cat"]
    assert names["n07920052/coffee"][0] == "espresso" and names["n03773504/rocket"][0] == "missile"
    assert all(len(i) == 20 and len(p) == 20 for i, p in zip(table.topk_indices, table.topk_probs))
    assert table.set_index("image_id").label_rank["n02123045/chelsea"] == 1
    metadata = store.read_metadata(out)
    assert {k: metadata[k] for k in ("model", "weights", "top_k", "catalogue")} == {
        "model": "efficientnet_lite0", "weights": OFFLINE_LITE0, "top_k": "20", "catalogue": "imagenet-1k"}

    errors = pd.read_csv(store.errors_path(out))
    assert errors.image_id.tolist() == ["n07920052/broken"]
    assert errors.reason[0].startswith("UnidentifiedImageError")
    assert not store.parts_dir(out).exists()

    assert cli.main(argv) == 0  # a re-run finds the output up to date and leaves it alone
    assert "already up to date" in capsys.readouterr().out


def test_killed_run_resumes_from_finished_chunks(photo_dataset, tiny, tmp_path, monkeypatch):
    catalogue = load_catalogue()
    records = read_dataset(photo_dataset, catalogue)
    options = dict(top_k=5, batch_size=1, workers=0, chunk_size=1, progress=False)
    reference = run_proposals(records, tiny, catalogue, tmp_path / "reference.parquet", **options)
    assert reference.computed == 4 and reference.proposed == 4

    real_write = store.write_chunk
    written = []

    def write_then_die(parts, chunk, *args):
        if len(written) == 2:
            raise KeyboardInterrupt  # the run is killed after two chunks reached the disk
        written.append(chunk)
        real_write(parts, chunk, *args)

    out = tmp_path / "resumed.parquet"
    monkeypatch.setattr(store, "write_chunk", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_proposals(records, tiny, catalogue, out, **options)
    assert not out.exists() and store.done_chunks(store.parts_dir(out)) == {0, 1}
    monkeypatch.setattr(store, "write_chunk", real_write)

    resumed = run_proposals(records, tiny, catalogue, out, **options)
    assert resumed.computed == 2 and resumed.proposed == 4
    pd.testing.assert_frame_equal(store.read_proposals(out), store.read_proposals(tmp_path / "reference.parquet"))


def test_resume_refuses_parts_of_another_run(photo_dataset, tiny, tmp_path):
    catalogue = load_catalogue()
    records = read_dataset(photo_dataset, catalogue)
    out = tmp_path / "p.parquet"
    store.write_run_card(store.parts_dir(out), {"model": "resnet50"})
    with pytest.raises(UserError, match=r"holds a run with another .*model"):
        run_proposals(records, tiny, catalogue, out, top_k=5, workers=0, progress=False)


def test_label_ranks_agree_with_topk(photo_dataset, tiny, tmp_path):
    catalogue = load_catalogue()
    out = tmp_path / "p.parquet"
    run_proposals(read_dataset(photo_dataset, catalogue), tiny, catalogue, out, top_k=1000, workers=0, progress=False)
    for row in store.read_proposals(out).itertuples():
        assert row.label_rank == int(np.flatnonzero(row.topk_indices == row.label)[0]) + 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "no_such_net"], "unknown timm model 'no_such_net'"),
        (["--model", "test_resnet", "--top-k", "0"], "--top-k must be between 1 and"),
        (["--model", "test_resnet", "--catalogue", "CLASSES"], "has 1000 classes but catalogue"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(photo_dataset, tmp_path, capsys, args, message):
    (tmp_path / "classes.csv").write_text("id\ncat\ndog\n", encoding="utf-8")
    args = [str(tmp_path / "classes.csv") if a == "CLASSES" else a for a in args]
    out = tmp_path / "p.parquet"
    if "--catalogue" in args:  # a two-class catalogue needs a dataset of its own classes
        dataset = tmp_path / "ds"
        (dataset / "cat").mkdir(parents=True)
        shutil.copy(photo_dataset / "n02123045" / "chelsea.png", dataset / "cat")
    else:
        dataset = photo_dataset
    argv = ["propose", str(dataset), "--weights", RANDOM, "--out", str(out), "--workers", "0", *args]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("multilabelfy: error: ") and message in err and err.count("\n") == 1
    assert not out.exists() and not store.parts_dir(out).exists()


def test_cli_missing_dataset_and_unknown_label(tmp_path, capsys):
    assert cli.main(["propose", str(tmp_path / "none"), "--model", "test_resnet", "--out", str(tmp_path / "p")]) == 2
    assert "does not exist; pass a folder" in capsys.readouterr().err
    pd.DataFrame({"image": ["a.jpg"], "label": ["n12345678"]}).to_csv(tmp_path / "m.csv", index=False)
    assert cli.main(["propose", str(tmp_path / "m.csv"), "--model", "test_resnet", "--out", str(tmp_path / "p")]) == 2
    assert "row 1: label 'n12345678' is neither a class index" in capsys.readouterr().err


@pytest.mark.slow
def test_sigkilled_process_resumes_without_recomputing_finished_chunks(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from PIL import Image

    (tmp_path / "data" / "n02123045").mkdir(parents=True)
    for i in range(24):
        Image.new("RGB", (32, 32), (i, 2 * i, 255 - i)).save(tmp_path / "data" / "n02123045" / f"{i:03d}.png")
    out = tmp_path / "p.parquet"
    argv = ["propose", str(tmp_path / "data"), "--model", "test_resnet", "--weights", "random", "--top-k", "3",
            "--out", str(out), "--workers", "0", "--batch-size", "2", "--chunk-size", "2", "--no-progress"]
    process = subprocess.Popen([sys.executable, "-m", "multilabelfy.scripts.cli", *argv],
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    parts = store.parts_dir(out)
    deadline = time.monotonic() + 120
    while not (parts.is_dir() and len(store.done_chunks(parts)) >= 2) and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(store.done_chunks(parts))
    assert 2 <= done < 12 and not out.exists()

    catalogue = load_catalogue()
    records = read_dataset(tmp_path / "data", catalogue)
    summary = run_proposals(records, create_classifier("test_resnet", RANDOM), catalogue, out, top_k=3,
                            batch_size=2, workers=0, chunk_size=2, progress=False)
    assert summary.computed == 24 - 2 * done and summary.proposed == 24
    table = store.read_proposals(out)
    assert table.position.tolist() == list(range(24)) and not parts.exists()
