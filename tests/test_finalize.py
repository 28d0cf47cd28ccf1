"""Finalize on hand-made decisions and refinement exports: merge, provenance, unrefined images, file formats."""

import csv
import json

import pyarrow as pa
import pytest

from multilabelfy import finalize as fin
from multilabelfy.analysis.labelsets import read_label_sets
from multilabelfy.catalogue import from_csv
from multilabelfy.disagreement import AGREED, NEEDS_REFINEMENT
from multilabelfy.errors import UserError


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    path = tmp_path_factory.mktemp("catalogue") / "classes.csv"
    path.write_text("id,name\n" + "".join(f"c{i},class {i}\n" for i in range(10)))
    return from_csv(path)


def row(image_id, position, decision, agreed=None, chosen=(), reasons=(), task_id=None):
    return {"task_id": task_id or position + 1, "image_id": image_id, "position": position, "original_label": 0,
            "decision": decision, "reasons": list(reasons), "annotators": ["a@x", "b@x"],
            "agreed_labels": agreed, "chosen_labels": list(chosen), "comments": ["a@x: hm"]}


def merged(rows, refinements, manifest_ids=None):
    return list(fin.merge(pa.Table.from_pylist(rows), refinements, manifest_ids))


DECISIONS = [
    row("img2", 2, NEEDS_REFINEMENT, chosen=[0, 1], reasons=["sets_differ"]),
    row("img0", 0, AGREED, agreed=[0, 3], chosen=[0, 3]),
    row("img1", 1, NEEDS_REFINEMENT, chosen=[2], reasons=["original_label_missing"]),
    row("img3", 3, NEEDS_REFINEMENT, chosen=[4], reasons=["too_few_annotators"]),
]


def refinement_task(task_id, image_id, *annotations, project=9):
    return {"id": task_id, "project": project, "data": {"image_id": image_id}, "annotations": list(annotations)}


def refined(user, *class_ids, comment="", extra=(), none=False, cancelled=False, updated="2026-01-02T00:00:00Z"):
    result = [{"from_name": "group_1", "to_name": "image", "type": "choices", "value": {"choices": list(class_ids)}}]
    if extra:
        result.append({"from_name": "group_extra", "to_name": "image", "type": "choices",
                       "value": {"choices": list(extra)}})
    if none:
        result.append({"from_name": "none", "to_name": "image", "type": "choices",
                       "value": {"choices": ["none_of_these"]}})
    if comment:
        result.append({"from_name": "comment", "to_name": "image", "type": "textarea", "value": {"text": [comment]}})
    return {"completed_by": user, "result": result, "was_cancelled": cancelled, "updated_at": updated}


def test_read_refinements_latest_wins_and_skips_do_not_count(catalogue, tmp_path):
    first = tmp_path / "r1.json"
    first.write_text(json.dumps([
        refinement_task(1, "img2", refined(5, "c0", comment="old", updated="2026-01-01T00:00:00Z"),
                        refined(5, "c0", "c1", comment="both", updated="2026-01-03T00:00:00Z")),
        refinement_task(2, "img3", refined(5, cancelled=True)),
    ]))
    second = tmp_path / "r2.json"
    second.write_text(json.dumps([refinement_task(7, "img2", refined(6, "c1", updated="2026-01-02T00:00:00Z"),
                                                  project=10)]))
    found = fin.read_refinements([first, second], catalogue, users={5: "e@x", 6: "f@x"})
    assert set(found) == {"img2"}
    assert found["img2"].labels == (0, 1) and found["img2"].comment == "both"
    assert found["img2"].refiner == "e@x" and found["img2"].submissions == 3


def test_merge_orders_by_position_and_keeps_provenance(catalogue):
    refinements = {
        "img2": fin.Refinement("img2", (0, 1), "", "e@x", "t"),  # unchanged from the union: no comment needed
        "img1": fin.Refinement("img1", (2, 7), "", "f@x", "t"),  # changed without a comment: flagged
    }
    final = merged(DECISIONS, refinements)
    assert [f.image_id for f in final] == ["img0", "img1", "img2", "img3"]
    assert [f.stage for f in final] == ["agreed", "refined", "refined", "unrefined"]
    assert [f.labels for f in final] == [(0, 3), (2, 7), (0, 1), None]
    assert [f.changed_without_comment for f in final] == [False, True, False, False]
    assert final[3].reasons == ("too_few_annotators",)
    assert final[1].refined_by == "f@x" and final[1].comments == ("a@x: hm",)


def test_merge_with_a_manifest_reports_images_never_annotated(monkeypatch):
    monkeypatch.setattr(fin, "_BATCH_ROWS", 2)  # rows are read in batches: cross their boundaries
    final = merged(DECISIONS, {}, manifest_ids=["img0", "new", "img1", "img2", "img3"])
    assert [f.stage for f in final] == ["agreed", "not_annotated", "unrefined", "unrefined", "unrefined"]
    assert [(f.image_id, f.position) for f in final] == [("img0", 0), ("new", 1), ("img1", 2), ("img2", 3),
                                                         ("img3", 4)]
    with pytest.raises(UserError, match="'ghost' is in no annotation task"):
        merged(DECISIONS, {"ghost": fin.Refinement("ghost", (), "", "e@x", "t")})


def test_unrefined_images_stop_finalize_unless_allowed(catalogue, tmp_path):
    final = merged(DECISIONS, {"img2": fin.Refinement("img2", (), "none fit", "e@x", "t")})
    with pytest.raises(UserError, match=r"2 images have no final labels yet \(first: 'img1', unrefined\)"):
        fin.write_outputs(final, catalogue, tmp_path / "out")
    assert not (tmp_path / "out" / fin.LABELS_JSON).exists()
    with open(tmp_path / "out" / fin.UNREFINED_CSV, newline="") as handle:
        assert [(r["image_id"], r["reasons"]) for r in csv.DictReader(handle)] == [
            ("img1", "original_label_missing"), ("img3", "too_few_annotators")]

    summary = fin.write_outputs(final, catalogue, tmp_path / "out", allow_unrefined=True)
    assert json.loads((tmp_path / "out" / fin.LABELS_JSON).read_text()) == [[0, 3], [], [], []]
    assert summary["stages"] == {"agreed": 1, "refined": 1, "unrefined": 2, "not_annotated": 0}
    assert summary["label_counts"] == {"0": 1, "1": 0, "2": 1, ">2": 0}


def test_outputs_are_readable_by_the_analysis(catalogue, tmp_path):
    refinements = {"img2": fin.Refinement("img2", (0, 1, 5), "more", "e@x", "t"),
                   "img1": fin.Refinement("img1", (2,), "ok", "f@x", "t"),
                   "img3": fin.Refinement("img3", (), "nothing fits", "f@x", "t")}
    out = tmp_path / "final"
    summary = fin.write_outputs(merged(DECISIONS, refinements), catalogue, out)
    assert summary["label_counts"] == {"0": 1, "1": 1, "2": 1, ">2": 1}
    assert read_label_sets(out / fin.LABELS_JSON).labels == [(0, 3), (2,), (0, 1, 5), ()]
    assert json.loads((out / fin.LABELS_BY_ID).read_text()) == {"img0": [0, 3], "img1": [2], "img2": [0, 1, 5],
                                                                 "img3": []}
    from_csv_file = read_label_sets(out / fin.LABELS_CSV)
    assert from_csv_file.by_id() == {"img0": (0, 3), "img1": (2,), "img2": (0, 1, 5), "img3": ()}
    with open(out / fin.LABELS_CSV, newline="") as handle:
        rows = {r["image_id"]: r for r in csv.DictReader(handle)}
    assert rows["img2"]["label_ids"] == "c0 c1 c5" and rows["img2"]["stage"] == "refined"
    assert rows["img2"]["comments"] == "a@x: hm | e@x: more" and rows["img2"]["refined_by"] == "e@x"
    assert rows["img0"]["stage"] == "agreed" and rows["img0"]["annotators"] == "a@x;b@x"
    assert (out / fin.UNREFINED_CSV).read_text().strip() == "image_id,position,stage,reasons"


def test_command_finalizes_from_saved_exports_without_a_server(catalogue, tmp_path, capsys):
    import pyarrow.parquet as pq

    from multilabelfy.disagreement import DECISIONS_FILE, DECISIONS_SCHEMA
    from multilabelfy.scripts import cli

    analysis = tmp_path / "analysis"
    analysis.mkdir()
    full = [{**{name: None for name in DECISIONS_SCHEMA.names}, **r} for r in DECISIONS]
    pq.write_table(pa.Table.from_pylist(full, schema=DECISIONS_SCHEMA), analysis / DECISIONS_FILE)
    export = tmp_path / "refined.json"
    export.write_text(json.dumps([refinement_task(1, "img1", refined(5, "c2", comment="ok")),
                                  refinement_task(2, "img2", refined(5, "c0", comment="ok")),
                                  refinement_task(3, "img3", refined(5, none=True, comment="nothing"))]))
    catalogue_csv = tmp_path / "classes.csv"
    catalogue_csv.write_text("id,name\n" + "".join(f"c{i},class {i}\n" for i in range(10)))
    assert cli.main(["finalize", "--annotation", str(analysis), "--refinement-exports", str(export),
                     "--out", str(tmp_path / "final"), "--catalogue", str(catalogue_csv), "--no-progress"]) == 0
    assert json.loads((tmp_path / "final" / fin.LABELS_JSON).read_text()) == [[0, 3], [2], [0], []]
    assert "4 images (agreed 1, refined 3, unrefined 0, not_annotated 0)" in capsys.readouterr().out
