"""create-project against the real Label Studio: template, 20 proposals per task, overlap, batches, idempotent
re-runs, images served, an annotation that round-trips through a snapshot export; and bad input."""

import json
import uuid

import numpy as np
import pandas as pd
import pytest
import requests

from multilabelfy.annotation.project import (
    ImageLinker, annotation_template, batch_titles, create_annotation_projects, read_exemplars, split_batches,
)
from multilabelfy.annotation.tasks import GROUPS, parse_annotation, prediction_result
from multilabelfy.catalogue import load_catalogue
from multilabelfy.errors import UserError
from multilabelfy.scripts import cli

PHOTOS = ["chelsea", "coffee", "rocket", "astronaut", "camera"]


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


def write_proposals(path, images, labels, rng_seed=0):
    """A proposals Parquet with the documented schema (docs/architecture.md), 20 proposals per image."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for position, (image, label) in enumerate(zip(images, labels)):
        indices = rng.choice(1000, size=20, replace=False).astype(np.int32)
        if label is not None:
            indices[0] = label
        probs = np.sort(rng.random(20).astype(np.float32))[::-1]
        rows.append({"position": position, "image_id": f"img/{position:03d}", "image": str(image),
                     "label": label, "topk_indices": indices, "topk_probs": probs / probs.sum(),
                     "label_rank": 1 if label is not None else None})
    frame = pd.DataFrame(rows)
    frame["label"] = frame["label"].astype("Int64")
    frame["label_rank"] = frame["label_rank"].astype("Int32")
    frame.to_parquet(path, index=False)
    return frame


@pytest.fixture(scope="module")
def photo_files(label_studio):
    """Real photos under the server's document root (a fresh subfolder per test module), plus exemplars."""
    import skimage.data
    from PIL import Image

    folder = label_studio.document_root / f"project-{uuid.uuid4().hex[:6]}"
    (folder / "images").mkdir(parents=True)
    (folder / "exemplars").mkdir()
    images = []
    for name in PHOTOS:
        path = folder / "images" / f"{name} photo.jpg"  # a space: URLs must be quoted
        Image.fromarray(getattr(skimage.data, name)()).convert("RGB").save(path)
        images.append(path)
    exemplar = folder / "exemplars" / "tabby.jpg"
    Image.fromarray(skimage.data.chelsea()).save(exemplar)
    return folder, images, exemplar


# --- pure parts -------------------------------------------------------------------------------------------------


def test_template_is_valid_xml_and_does_not_show_the_original_label():
    import xml.etree.ElementTree as ET

    root = ET.fromstring(annotation_template())
    choices = {c.get("name"): c.get("value") for c in root.iter("Choices")}
    assert {name: choices[name] for name in GROUPS} == {name: f"${name}" for name in GROUPS}
    assert "none" in choices and [t.get("name") for t in root.iter("TextArea")] == ["comment"]
    assert [i.get("value") for i in root.iter("Image")] == ["$image"]
    assert "$original_label_name" not in annotation_template() and "$original_label\"" not in annotation_template()


def test_batches_split_contiguously_and_titles_say_which():
    assert batch_titles("T", 1) == ["T"]
    assert batch_titles("T", 3) == ["T (batch 1/3)", "T (batch 2/3)", "T (batch 3/3)"]
    parts = split_batches([{"i": i} for i in range(7)], 3)
    assert [[x["i"] for x in part] for part in parts] == [[0, 1, 2], [3, 4], [5, 6]]
    with pytest.raises(UserError, match="at least 1"):
        batch_titles("T", 0)


def test_image_linker_quotes_paths_and_refuses_what_the_server_cannot_serve(tmp_path):
    root = tmp_path / "root"
    (root / "set a").mkdir(parents=True)
    (root / "set a" / "x 1.jpg").write_bytes(b"x")
    (root / "flat.jpg").write_bytes(b"x")
    linker = ImageLinker(root)
    assert linker.url(str(root / "set a" / "x 1.jpg"), "image x") == "/data/local-files/?d=set%20a/x%201.jpg"
    assert linker.url("https://example.org/a.jpg", "image y") == "https://example.org/a.jpg"
    assert linker.storage_folders() == [root / "set a"]
    with pytest.raises(UserError, match="outside the Label Studio document root"):
        linker.url(str(tmp_path / "elsewhere.jpg"), "image z")
    with pytest.raises(UserError, match="subfolder"):
        linker.url(str(root / "flat.jpg"), "image z")
    with pytest.raises(UserError, match="does not exist"):
        linker.url(str(root / "set a" / "missing.jpg"), "image z")
    with pytest.raises(UserError, match="--document-root"):
        ImageLinker(None).url(str(root / "set a" / "x 1.jpg"), "image z")


def test_exemplars_file_is_checked(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"n1": "not a list"}')
    with pytest.raises(UserError, match="must be a JSON object"):
        read_exemplars(bad)
    with pytest.raises(UserError, match="does not exist"):
        read_exemplars(tmp_path / "missing.json")


# --- against the real server ------------------------------------------------------------------------------------


@pytest.mark.label_studio
def test_projects_with_batches_overlap_and_idempotent_rerun(ls_client, label_studio, photo_files, catalogue,
                                                            tmp_path):
    folder, images, exemplar = photo_files
    proposals = write_proposals(tmp_path / "p.parquet", images, [281, 967, 657, None, 759])
    exemplars = {"n02123045": [str(exemplar)]}
    title = f"annotation {uuid.uuid4().hex[:6]}"
    kwargs = dict(exemplars=exemplars, annotators_per_image=2, batches=2, document_root=label_studio.document_root,
                  progress=False)
    first = create_annotation_projects(ls_client, proposals, catalogue, title, **kwargs)
    assert [o.title for o in first] == [f"{title} (batch 1/2)", f"{title} (batch 2/2)"]
    assert [(o.created, o.imported, o.already_present) for o in first] == [(True, 3, 0), (True, 2, 0)]

    for outcome in first:
        project = ls_client.get_project(outcome.project_id)
        assert project["label_config"].strip() == annotation_template().strip()
        assert (project["maximum_annotations"], project["overlap_cohort_percentage"]) == (2, 100)
        assert outcome.url == f"{label_studio.url}/projects/{outcome.project_id}/data"
    tasks = [t for o in first for t in ls_client.iter_tasks(o.project_id)]
    assert sorted(t["data"]["image_id"] for t in tasks) == [f"img/{i:03d}" for i in range(5)]
    for task in tasks:
        data = task["data"]
        row = proposals.set_index("image_id").loc[data["image_id"]]
        assert [o["value"] for g in GROUPS for o in data[g]] == [catalogue[int(i)].id for i in row.topk_indices]
        assert [len(data[g]) for g in GROUPS] == [5, 5, 5, 5]
        assert data["position"] == row.position and len(data["proposal_probs"]) == 20
        assert data["original_label_hint"] == ""
        served = requests.get(label_studio.url + data["image"], timeout=10,
                              headers={"Authorization": f"Token {label_studio.api_key}"})
        assert served.status_code == 200 and served.content[:2] == b"\xff\xd8"  # the JPEG itself
    cat_task = next(t for t in tasks if t["data"]["image_id"] == "img/000")
    assert cat_task["data"]["original_label"] == "n02123045"
    assert "/data/local-files/?d=" in cat_task["data"]["group_1"][0]["html"]  # tabby's exemplar strip

    again = create_annotation_projects(ls_client, proposals, catalogue, title, **kwargs)
    assert [(o.project_id, o.created, o.imported, o.already_present) for o in again] == \
        [(o.project_id, False, 0, n) for o, n in zip(first, [3, 2])]
    assert sum(1 for o in first for _ in ls_client.iter_tasks(o.project_id)) == 5

    # An annotation submitted through the API round-trips through a snapshot export.
    chosen = [cat_task["data"]["group_1"][0]["value"], cat_task["data"]["group_3"][2]["value"]]
    result = prediction_result(chosen, cat_task["data"]) + [
        {"from_name": "comment", "to_name": "image", "type": "textarea", "value": {"text": ["two cats?"]}}]
    ls_client.create_annotation(cat_task["id"], result, completed_by=ls_client.user["id"])
    export = ls_client.export_snapshot(first[0].project_id, tmp_path / "export.json", poll_seconds=0.2)
    exported = {t["id"]: t for t in json.loads(export.read_text())}
    parsed = parse_annotation(exported[cat_task["id"]]["annotations"][0]["result"])
    assert parsed.selected == set(chosen) and parsed.comment == "two cats?" and not parsed.none_of_these


@pytest.mark.label_studio
def test_cli_prints_urls_and_bad_input_creates_nothing(ls_client, label_studio, photo_files, tmp_path, monkeypatch,
                                                       capsys):
    folder, images, exemplar = photo_files
    write_proposals(tmp_path / "p.parquet", images[:2], [281, 967])
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.api_key)
    monkeypatch.setenv("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT", str(label_studio.document_root))
    title = f"cli {uuid.uuid4().hex[:6]}"

    (tmp_path / "ex.json").write_text(json.dumps({"n02123045": [str(tmp_path / "not-under-root.jpg")]}))
    args = ["create-project", "--proposals", str(tmp_path / "p.parquet"), "--title", title]
    assert cli.main(args + ["--exemplars", str(tmp_path / "ex.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("multilabelfy: error: exemplar") and err.count("\n") == 1
    assert label_studio.api_key not in err
    assert ls_client.find_project(title) is None  # checked before anything was created

    assert cli.main(args + ["--annotators-per-image", "3", "--show-original-label"]) == 0
    out = capsys.readouterr().out
    project = ls_client.find_project(title)
    assert f"{label_studio.url}/projects/{project['id']}/data" in out and "2 tasks imported" in out
    assert ls_client.get_project(project["id"])["maximum_annotations"] == 3
    hints = sorted(t["data"]["original_label_hint"] for t in ls_client.iter_tasks(project["id"]))
    assert hints == ["Dataset label: espresso", "Dataset label: tabby"]
    assert label_studio.api_key not in out


@pytest.mark.label_studio
def test_a_foreign_project_with_the_same_title_is_left_alone(ls_client, label_studio, photo_files, catalogue,
                                                             tmp_path):
    folder, images, exemplar = photo_files
    proposals = write_proposals(tmp_path / "p.parquet", images[:2], [281, 967])
    title = f"foreign {uuid.uuid4().hex[:6]}"
    foreign = ls_client.create_project(
        title, '<View><Image name="img" value="$img"/><Choices name="c" toName="img"><Choice value="a"/>'
               '<Choice value="b"/></Choices></View>')
    with pytest.raises(UserError, match="not a Multilabelfy annotation project"):
        create_annotation_projects(ls_client, proposals, catalogue, title,
                                   document_root=label_studio.document_root, progress=False)
    assert list(ls_client.iter_tasks(foreign["id"])) == []


@pytest.mark.label_studio
def test_a_run_cut_off_during_the_import_is_completed_by_the_next(ls_client, label_studio, photo_files, catalogue,
                                                                  tmp_path, monkeypatch):
    folder, images, exemplar = photo_files
    proposals = write_proposals(tmp_path / "p.parquet", images, [281, 967, 657, None, 759])
    title = f"resume {uuid.uuid4().hex[:6]}"
    real_import = ls_client.import_tasks

    def import_two_then_fail(project_id, tasks, **kwargs):
        real_import(project_id, list(tasks)[:2], **kwargs)
        raise UserError("connection lost (simulated)")

    monkeypatch.setattr(ls_client, "import_tasks", import_two_then_fail)
    with pytest.raises(UserError, match="simulated"):
        create_annotation_projects(ls_client, proposals, catalogue, title, document_root=label_studio.document_root,
                                   progress=False)
    monkeypatch.undo()
    [outcome] = create_annotation_projects(ls_client, proposals, catalogue, title,
                                           document_root=label_studio.document_root, progress=False)
    assert (outcome.created, outcome.imported, outcome.already_present) == (False, 3, 2)
    ids = sorted(t["data"]["image_id"] for t in ls_client.iter_tasks(outcome.project_id))
    assert ids == sorted(proposals.image_id)


@pytest.mark.label_studio
def test_duplicates_audit_puts_a_note_on_exactly_the_duplicated_images(ls_client, label_studio, photo_files,
                                                                       tmp_path, monkeypatch, capsys):
    """create-project --duplicates with a real `audit duplicates` folder: the two copies of one photo get a note
    naming each other, the other image an empty one; a folder that is no duplicates audit creates nothing."""
    from PIL import Image

    folder, images, _ = photo_files
    copy = folder / "images" / f"chelsea copy {uuid.uuid4().hex[:6]}.jpg"
    Image.open(images[0]).resize((300, 200)).save(copy, quality=80)
    chosen = [images[0], images[1], copy]
    write_proposals(tmp_path / "p.parquet", chosen, [281, 967, 285])  # ids img/000, img/001, img/002
    (tmp_path / "m.csv").write_text("id,label,image\n" + "".join(
        f"img/{i:03d},{label},{path}\n" for i, (label, path) in enumerate(zip([281, 967, 285], chosen))))
    assert cli.main(["audit", "duplicates", str(tmp_path / "m.csv"), "--no-embeddings", "--workers", "0",
                     "--no-progress", "--out", str(tmp_path / "dups")]) == 0
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.api_key)
    monkeypatch.setenv("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT", str(label_studio.document_root))
    title = f"dups {uuid.uuid4().hex[:6]}"
    args = ["create-project", "--proposals", str(tmp_path / "p.parquet"), "--title", title]

    assert cli.main(args + ["--duplicates", str(tmp_path)]) == 2  # a folder without groups.csv
    assert "has no groups.csv" in capsys.readouterr().err and ls_client.find_project(title) is None

    assert cli.main(args + ["--duplicates", str(tmp_path / "dups")]) == 0
    project = ls_client.find_project(title)
    notes = {t["data"]["image_id"]: t["data"]["duplicate_note"] for t in ls_client.iter_tasks(project["id"])}
    assert notes == {
        "img/000": "possible near duplicate of img/002; the copies are labelled tabby, Egyptian cat",
        "img/001": "",
        "img/002": "possible near duplicate of img/000; the copies are labelled tabby, Egyptian cat",
    }
