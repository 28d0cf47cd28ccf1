"""Stages 3-5 end to end on the real Label Studio: annotate through the API as several users, then
``disagreements`` -> ``spawn-refinement`` -> refine through the API -> ``finalize``, checking every decision
and every final label."""

import csv
import json
from importlib import resources

import pyarrow.parquet as pq
import pytest
from PIL import Image

from multilabelfy.annotation.tasks import build_task_data, prediction_result
from multilabelfy.catalogue import from_csv
from multilabelfy.refinement import EXTRA_GROUP, MODEL_VERSION
from multilabelfy.scripts import cli

pytestmark = [pytest.mark.label_studio, pytest.mark.slow]

PROPOSALS = [0, 1, 2, 3, 4]  # c9 is never proposed: only an API client can choose it

# image -> (original label, [(annotator, class ids or "skip", comment)], expected decision reasons)
CASES = {
    "agreed": (0, [("u1", ["c0", "c1"], ""), ("u2", ["c1", "c0"], "")], []),
    "differ": (0, [("u1", ["c0"], ""), ("u2", ["c0", "c2"], "also a c2")], ["sets_differ"]),
    "missing": (0, [("u1", ["c3"], ""), ("u2", ["c3"], "")], ["original_label_missing"]),
    "lone": (1, [("u1", ["c1"], "")], ["too_few_annotators"]),
    "skip": (1, [("u1", ["c1"], ""), ("u2", "skip", "cannot tell")], ["too_few_annotators"]),
    "all_skip": (2, [("u1", "skip", ""), ("u2", "skip", "")], ["all_skipped"]),
    "nobody": (2, [], ["no_annotations"]),
    "twice": (3, [("u1", ["c4"], ""), ("u1", ["c3"], ""), ("u2", ["c3"], "")], []),
    "outside": (0, [("u1", ["c0", "c9"], ""), ("u3", ["c0"], "")], ["sets_differ"]),
    "none": (4, [("u2", [], "none"), ("u3", [], "none")], ["original_label_missing"]),
}


@pytest.fixture(scope="module")
def catalogue_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("catalogue") / "classes.csv"
    path.write_text("id,name\n" + "".join(f"c{i},class {i}\n" for i in range(10)))
    return path


def result_for(data, choice, comment):
    """An annotation result as the UI would send it; ``[]`` with comment "none" ticks "none of these"."""
    result = prediction_result([c for c in choice if c in data["proposals"]], data)
    outside = [c for c in choice if c not in data["proposals"]]
    if outside:
        result.append({"from_name": "group_1", "to_name": "image", "type": "choices", "value": {"choices": outside}})
    if not choice and comment == "none":
        result.append({"from_name": "none", "to_name": "image", "type": "choices",
                       "value": {"choices": ["none_of_these"]}})
    elif comment:
        result.append({"from_name": "comment", "to_name": "image", "type": "textarea", "value": {"text": [comment]}})
    return result


def refinement_result(choice, comment):
    result = [{"from_name": "group_1", "to_name": "image", "type": "choices",
               "value": {"choices": [c for c in choice if c != "c9"]}}]
    if "c9" in choice:
        result.append({"from_name": EXTRA_GROUP, "to_name": "image", "type": "choices", "value": {"choices": ["c9"]}})
    return result + [{"from_name": "comment", "to_name": "image", "type": "textarea", "value": {"text": [comment]}}]


def command(label_studio, *args):
    return cli.main([*args, "--url", label_studio.url, "--api-key", label_studio.api_key])


def test_disagreements_refinement_finalize(label_studio, ls_client, catalogue_csv, tmp_path, capsys, monkeypatch):
    catalogue = from_csv(catalogue_csv)
    images = label_studio.document_root / "e2e_images"
    images.mkdir()
    Image.new("RGB", (8, 8), "red").save(images / "red.png")
    users = {name: ls_client.ensure_user(f"{name}@e2e.test")["id"] for name in ("u1", "u2", "u3")}

    title = "e2e stages"  # two batches, as create-project --batches 2 names them
    batch_titles = [f"{title} (batch 1/2)", f"{title} (batch 2/2)"]
    template = resources.files("multilabelfy.project_templates").joinpath("annotation.xml").read_text()
    projects = [ls_client.create_project(batch_title, template) for batch_title in batch_titles]
    for project in projects:
        ls_client.set_overlap(project["id"], 2)
        ls_client.ensure_local_storage(project["id"], images)
    tasks = [{"data": build_task_data("/data/local-files/?d=e2e_images/red.png", image_id, original, PROPOSALS,
                                      catalogue, extra={"position": position})}
             for position, (image_id, (original, _, _)) in enumerate(CASES.items())]
    task_ids = dict(zip(CASES, ls_client.import_tasks(projects[0]["id"], tasks[:5], progress=False)
                        + ls_client.import_tasks(projects[1]["id"], tasks[5:], progress=False)))
    for image_id, (_, annotations, _) in CASES.items():
        data = tasks[list(CASES).index(image_id)]["data"]
        for who, choice, comment in annotations:
            if choice == "skip":
                result = result_for(data, [], comment)
                ls_client.create_annotation(task_ids[image_id], result, completed_by=users[who], was_cancelled=True)
            else:
                ls_client.create_annotation(task_ids[image_id], result_for(data, choice, comment),
                                            completed_by=users[who])

    # a draft (the admin started "agreed" but did not submit) is counted, never used
    agreed_data = tasks[list(CASES).index("agreed")]["data"]
    ls_client.create_draft(task_ids["agreed"], result_for(agreed_data, ["c2"], ""))

    # --- stage 3 ---------------------------------------------------------------------------------------------
    analysis = tmp_path / "analysis"
    project_ids = ",".join(str(project["id"]) for project in projects)
    assert command(label_studio, "disagreements", "--project", project_ids, "--out", str(analysis),
                   "--catalogue", str(catalogue_csv), "--no-progress") == 0
    assert all((analysis / f"export-{project['id']}.json").is_file() for project in projects)
    decisions = {row["image_id"]: row for row in pq.read_table(analysis / "decisions.parquet").to_pylist()}
    for image_id, (_, _, reasons) in CASES.items():
        assert decisions[image_id]["reasons"] == reasons, image_id
        assert decisions[image_id]["decision"] == ("AGREED" if not reasons else "NEEDS_REFINEMENT")
    assert decisions["agreed"]["agreed_labels"] == [0, 1] and decisions["agreed"]["drafts"] == 1
    assert decisions["twice"]["agreed_labels"] == [3] and decisions["twice"]["superseded"] == 1
    assert decisions["skip"]["skipped_by"] == ["u2@e2e.test"]
    assert decisions["differ"]["comments"] == ["u2@e2e.test: also a c2"]
    summary = json.loads((analysis / "summary.json").read_text())
    assert (summary["images"], summary["agreed"], summary["needs_refinement"]) == (10, 2, 8)
    assert summary["required_annotators"] == 2 and summary["source"]["titles"] == batch_titles
    assert summary["annotations"]["skipped"] == 3 and summary["annotations"]["labels_outside_proposals"] == 1
    assert summary["annotations"]["drafts"] == 1 and summary["annotations"]["superseded"] == 1
    assert [(b["batch"], b["images"], b["agreed"]) for b in summary["per_batch"]] == [
        (batch_titles[0], 5, 1), (batch_titles[1], 5, 1)]

    # --- stage 4, twice: the second run creates nothing -----------------------------------------------------
    experts = "e1@e2e.test,e2@e2e.test"
    monkeypatch.setattr("multilabelfy.refinement._IMPORT_CHUNK", 3)  # several import chunks per expert
    for _ in range(2):
        assert command(label_studio, "spawn-refinement", "--from", str(analysis), "--annotators", experts,
                       "--catalogue", str(catalogue_csv), "--no-progress") == 0
    assignment = json.loads((analysis / "refinement.json").read_text())
    refinement_ids = [p["project"] for p in assignment["projects"]]
    assert [p["title"] for p in assignment["projects"]] == [f"{title} - refine e1@e2e.test",
                                                            f"{title} - refine e2@e2e.test"]
    assert [p["images"] for p in assignment["projects"]] == [4, 4]
    assert [p["imported_now"] for p in assignment["projects"]] == [0, 0]
    refinement_tasks = {}
    for project_id in refinement_ids:
        assert ls_client.find_project(ls_client.get_project(project_id)["title"])["id"] == project_id
        for task in ls_client.iter_tasks(project_id):
            refinement_tasks[task["data"]["image_id"]] = (project_id, task)
    needing = sorted(i for i, (_, _, reasons) in CASES.items() if reasons)
    assert sorted(refinement_tasks) == needing  # each exactly once, across both projects
    _, outside_task = refinement_tasks["outside"]
    assert [o["value"] for o in outside_task["data"][EXTRA_GROUP]] == ["c9"]
    assert "u1@e2e.test</b>: class 0, class 9" in outside_task["data"]["earlier"]
    exported = ls_client.export_snapshot(refinement_tasks["outside"][0], tmp_path / "check.json")
    (check,) = [t for t in json.loads(exported.read_text()) if t["data"]["image_id"] == "outside"]
    (prediction,) = check["predictions"]
    assert prediction["model_version"] == MODEL_VERSION
    assert {item["from_name"]: item["value"]["choices"] for item in prediction["result"]} == {
        "group_1": ["c0"], EXTRA_GROUP: ["c9"]}
    # the refinement projects can show the images: they got the annotation project's local storage
    assert all(ls_client.list_local_storages(p) for p in refinement_ids)

    # --- refine all but one image through the API -----------------------------------------------------------
    experts_ids = {name: ls_client.ensure_user(name)["id"] for name in experts.split(",")}
    refined = {"differ": ["c0", "c2"], "missing": ["c3", "c0"], "lone": ["c1"], "skip": ["c1", "c2"],
               "all_skip": [], "outside": ["c0", "c9"], "none": []}
    owner = {p["project"]: p["annotator"] for p in assignment["projects"]}
    for image_id, choice in refined.items():
        project_id, task = refinement_tasks[image_id]
        ls_client.create_annotation(task["id"], refinement_result(choice, f"checked {image_id}"),
                                    completed_by=experts_ids[owner[project_id]])

    final = tmp_path / "final"
    args = ["finalize", "--annotation", str(analysis), "--refinement", ",".join(map(str, refinement_ids)),
            "--out", str(final), "--catalogue", str(catalogue_csv)]
    assert command(label_studio, *args) == 2  # "nobody" is still unrefined
    assert "1 images have no final labels yet (first: 'nobody'" in capsys.readouterr().err
    assert not (final / "labels.json").exists()

    project_id, task = refinement_tasks["nobody"]
    ls_client.create_annotation(task["id"], refinement_result(["c2"], "a c2 after all"),
                                completed_by=experts_ids[owner[project_id]])
    assert command(label_studio, *args) == 0
    assert all((final / f"refinement-{p}.json").is_file() for p in refinement_ids)
    expected = {"agreed": [0, 1], "differ": [0, 2], "missing": [0, 3], "lone": [1], "skip": [1, 2], "all_skip": [],
                "nobody": [2], "twice": [3], "outside": [0, 9], "none": []}
    assert json.loads((final / "labels.json").read_text()) == list(expected.values())
    assert json.loads((final / "labels_by_id.json").read_text()) == expected
    with open(final / "labels.csv", newline="") as handle:
        rows = {row["image_id"]: row for row in csv.DictReader(handle)}
    assert rows["agreed"]["stage"] == "agreed" and rows["agreed"]["annotators"] == "u1@e2e.test;u2@e2e.test"
    assert rows["nobody"]["stage"] == "refined" and rows["nobody"]["refined_by"] in experts.split(",")
    assert rows["differ"]["comments"].endswith("checked differ")
    summary = json.loads((final / "summary.json").read_text())
    assert summary["stages"] == {"agreed": 2, "refined": 8, "unrefined": 0, "not_annotated": 0}
    assert summary["label_counts"] == {"0": 2, "1": 3, "2": 5, ">2": 0}
    assert label_studio.api_key not in capsys.readouterr().out


def test_simulated_annotators_drive_every_stage(label_studio, ls_client, catalogue_csv, tmp_path):
    """What `make demo --simulate` does: simulated people, then the three commands, twice over (idempotent)."""
    import random

    from multilabelfy.simulate import expert_result, simulate_annotation, simulate_refinement

    catalogue = from_csv(catalogue_csv)
    template = resources.files("multilabelfy.project_templates").joinpath("annotation.xml").read_text()
    project = ls_client.create_project("simulated stages", template)
    ls_client.set_overlap(project["id"], 2)
    rng = random.Random(1)
    tasks = []
    for position in range(12):
        proposals = rng.sample(range(10), 5)
        probs = sorted((rng.random() for _ in proposals), reverse=True)
        probs = [p / sum(probs) for p in probs]
        tasks.append({"data": build_task_data(f"https://example.org/{position}.jpg", f"sim{position}", proposals[0],
                                              proposals, catalogue,
                                              extra={"position": position, "proposal_probs": probs})})
    ls_client.import_tasks(project["id"], tasks, progress=False)

    annotators = ["s1@sim.test", "s2@sim.test", "s3@sim.test"]
    assert simulate_annotation(ls_client, [project["id"]], annotators, seed=3) == 24
    assert simulate_annotation(ls_client, [project["id"]], annotators, seed=3) == 0
    for task in ls_client.iter_tasks(project["id"]):
        assert len({a["completed_by"] for a in task["annotations"]}) == 2

    analysis = tmp_path / "analysis"
    assert command(label_studio, "disagreements", "--project", str(project["id"]), "--out", str(analysis),
                   "--catalogue", str(catalogue_csv), "--no-progress") == 0
    summary = json.loads((analysis / "summary.json").read_text())
    assert summary["agreed"] + summary["needs_refinement"] == 12 and summary["needs_refinement"] > 0
    assert command(label_studio, "spawn-refinement", "--from", str(analysis), "--annotators", "x1@sim.test",
                   "--catalogue", str(catalogue_csv), "--no-progress") == 0
    (refinement,) = json.loads((analysis / "refinement.json").read_text())["projects"]
    experts = {refinement["project"]: refinement["annotator"]}
    assert simulate_refinement(ls_client, experts) == summary["needs_refinement"]
    assert simulate_refinement(ls_client, experts) == 0
    final = tmp_path / "final"
    assert command(label_studio, "finalize", "--annotation", str(analysis), "--refinement",
                   str(refinement["project"]), "--out", str(final), "--catalogue", str(catalogue_csv)) == 0
    labels = json.loads((final / "labels.json").read_text())
    assert len(labels) == 12 and all(isinstance(s, list) for s in labels)
    # the experts' refinements are what expert_result says for each image
    decisions = {r["image_id"]: r for r in pq.read_table(analysis / "decisions.parquet").to_pylist()}
    for position, task in enumerate(tasks):
        data = task["data"]
        if decisions[data["image_id"]]["decision"] == "NEEDS_REFINEMENT":
            ids = [c for item in expert_result(data) if item["from_name"].startswith("group_")
                   for c in item["value"]["choices"]]
            assert labels[position] == sorted(catalogue.index_of(c) for c in ids)
        else:
            assert labels[position] == decisions[data["image_id"]]["agreed_labels"]
