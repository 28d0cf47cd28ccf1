"""Refinement tasks, their parsing and the even split, without a server (the server parts: test_stages_e2e.py)."""

import xml.etree.ElementTree as ET

import pytest

from multilabelfy.annotation.tasks import GROUPS, build_task_data
from multilabelfy.catalogue import from_csv
from multilabelfy.refinement import (
    EARLIER, EXTRA_GROUP, MODEL_VERSION, build_refinement_task, load_template, parse_refinement, place,
)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    path = tmp_path_factory.mktemp("catalogue") / "classes.csv"
    path.write_text("id,name\n" + "".join(f"c{i},class {i}\n" for i in range(30)))
    return from_csv(path)


def decision(**fields):
    row = {"task_id": 11, "annotators": ["a@x", "b@x"], "label_sets": [[0], [0, 25]], "skipped_by": ["c@x"],
           "chosen_labels": [0, 25], "comments": ["b@x: a <cat> too", "c@x: too dark"]}
    row.update(fields)
    return row


def test_template_shares_the_annotation_tags_and_requires_a_comment():
    root = ET.fromstring(load_template())
    names = {el.get("name"): el for el in root.iter() if el.get("name")}
    for name in (*GROUPS, EXTRA_GROUP, "none", "comment", "image", EARLIER):
        assert name in names
    assert names["comment"].get("required") == "true"
    assert names[EXTRA_GROUP].get("value") == f"${EXTRA_GROUP}"


def test_refinement_task_adds_outside_choices_and_prechecks_the_union(catalogue):
    data = build_task_data("/data/local-files/?d=x.jpg", "x", 0, list(range(20)), catalogue)
    task = build_refinement_task(data, decision(), catalogue)
    refined = task["data"]
    assert refined["group_1"] == data["group_1"] and refined["proposals"] == data["proposals"]
    assert [o["value"] for o in refined[EXTRA_GROUP]] == ["c25"]  # chosen by b@x, not a proposal
    assert "hotkey" not in refined[EXTRA_GROUP][0]
    assert refined["refines_task"] == 11
    earlier = refined[EARLIER]
    assert "a@x</b>: class 0" in earlier and "class 0, class 25" in earlier
    assert "&lt;cat&gt;" in earlier and "c@x</b>: <i>skipped</i>" in earlier and "too dark" in earlier
    (prediction,) = task["predictions"]
    assert prediction["model_version"] == MODEL_VERSION
    by_group = {item["from_name"]: item["value"]["choices"] for item in prediction["result"]}
    assert by_group == {"group_1": ["c0"], EXTRA_GROUP: ["c25"]}


def test_refinement_tasks_carry_the_annotation_tasks_duplicate_note(catalogue):
    noted = build_task_data("u", "x", 0, [0, 1], catalogue, duplicate_note="possible near duplicate of y")
    assert build_refinement_task(noted, decision(), catalogue)["data"]["duplicate_note"] == \
        "possible near duplicate of y"
    # an annotation task made before the field existed still gives the template its field
    old = {k: v for k, v in noted.items() if k != "duplicate_note"}
    assert build_refinement_task(old, decision(), catalogue)["data"]["duplicate_note"] == ""
    assert any(el.get("value") == "$duplicate_note" for el in ET.fromstring(load_template()).iter())


def test_everyone_said_none_of_these_prechecks_none(catalogue):
    data = build_task_data("u", "y", 3, [1, 2], catalogue)
    task = build_refinement_task(data, decision(label_sets=[[], []], chosen_labels=[], comments=[]), catalogue)
    (prediction,) = task["predictions"]
    assert prediction["result"] == [{"from_name": "none", "to_name": "image", "type": "choices",
                                     "value": {"choices": ["none_of_these"]}}]
    nobody = build_refinement_task(data, decision(annotators=[], label_sets=[], chosen_labels=[], skipped_by=[],
                                                  comments=[]), catalogue)
    assert nobody["predictions"] == [] and "nobody annotated" in nobody["data"][EARLIER]


def test_parse_refinement_reads_groups_extra_none_and_comment(catalogue):
    result = [
        {"from_name": "group_2", "to_name": "image", "type": "choices", "value": {"choices": ["c7"]}},
        {"from_name": EXTRA_GROUP, "to_name": "image", "type": "choices", "value": {"choices": ["c25"]}},
        {"from_name": "comment", "to_name": "image", "type": "textarea", "value": {"text": ["added c7"]}},
    ]
    choice = parse_refinement(result, catalogue)
    assert (choice.labels, choice.none_of_these, choice.comment) == ((7, 25), False, "added c7")


def test_place_keeps_earlier_placements_and_balances_the_rest():
    order = [f"i{k}" for k in range(7)]
    first = place(order, {"a": set(), "b": set(), "c": set()})
    assert first == {"a": ["i0", "i3", "i6"], "b": ["i1", "i4"], "c": ["i2", "i5"]}
    assert place(order, {a: set(ids) for a, ids in first.items()}) == {"a": [], "b": [], "c": []}
    # a new image and a new annotator: nothing moves, the newcomer gets the new image
    again = place(order + ["i7"], {**{a: set(ids) for a, ids in first.items()}, "d": set()})
    assert again == {"a": [], "b": [], "c": [], "d": ["i7"]}


def test_template_passes_label_studio_config_validation():
    from label_studio_sdk.label_interface import LabelInterface

    LabelInterface(load_template()).validate()  # the server runs the same check when a project is created


def test_base_title_drops_the_batch_suffix():
    from multilabelfy.refinement import base_title

    assert base_title({"titles": ["ImageNetV2 (batch 2/7)", "ImageNetV2 (batch 3/7)"]}) == "ImageNetV2"
    assert base_title({"titles": ["Mine"]}) == "Mine"
    assert base_title({"projects": [4]}) == "project 4"


def test_refinement_titles_fit_label_studio_and_stay_distinct():
    from multilabelfy.refinement import TITLE_MAX, refinement_title

    assert refinement_title("Multilabelfy demo", "expert1@demo.local") == "Multilabelfy demo - refine expert1@demo.local"
    long_title = refinement_title("ImageNetV2 matched-frequency relabelling, round 2", "ann@lab.org")
    assert len(long_title) == TITLE_MAX and long_title.endswith("~ - refine ann@lab.org")
    long_emails = [refinement_title("T", f"a.very.long.name.of.an.expert.{k}@some-institute.example.org")
                   for k in range(2)]
    assert all(len(t) <= TITLE_MAX for t in long_emails) and long_emails[0] != long_emails[1]
    assert refinement_title("T", "x@y.z") == refinement_title("T", "x@y.z")


def test_nothing_to_refine_creates_nothing(catalogue, tmp_path):
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from multilabelfy.disagreement import DECISIONS_FILE, DECISIONS_SCHEMA, SUMMARY_FILE
    from multilabelfy.refinement import ASSIGNMENT_FILE, spawn_refinement

    class NoServer:
        def __getattr__(self, name):
            raise AssertionError(f"spawn-refinement called Label Studio ({name}) with nothing to refine")

    row = {name: None for name in DECISIONS_SCHEMA.names}
    row.update(task_id=1, image_id="a", decision="AGREED", agreed_labels=[0])
    pq.write_table(pa.Table.from_pylist([row], schema=DECISIONS_SCHEMA), tmp_path / DECISIONS_FILE)
    (tmp_path / SUMMARY_FILE).write_text(json.dumps({"source": {"projects": [3], "exports": []}}))
    assignment = spawn_refinement(NoServer(), tmp_path, ["e@x"], catalogue)
    assert assignment["projects"] == [] and json.loads((tmp_path / ASSIGNMENT_FILE).read_text()) == assignment
