"""The disagreement stage on hand-made Label Studio exports: every case of the decision rule, the tables, the summary."""

import json

import pyarrow.parquet as pq
import pytest

from multilabelfy import disagreement as dis
from multilabelfy.agreement import krippendorff_alpha_masi
from multilabelfy.annotation.tasks import build_task_data, prediction_result
from multilabelfy.catalogue import from_csv
from multilabelfy.errors import UserError


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """Ten classes c0..c9 (a user catalogue, so no timm import)."""
    path = tmp_path_factory.mktemp("catalogue") / "classes.csv"
    path.write_text("id,name\n" + "".join(f"c{i},class {i}\n" for i in range(10)))
    return from_csv(path)


def make_task(catalogue, task_id, original, annotations=(), drafts=(), proposals=(0, 1, 2, 3, 4), batch=None):
    extra = {"batch": batch} if batch else None
    data = build_task_data(f"/data/local-files/?d=img{task_id}.jpg", f"img{task_id}", original, proposals,
                           catalogue, extra=extra)
    built = []
    for number, make in enumerate(annotations):
        annotation = make(data)
        annotation.setdefault("id", task_id * 100 + number)
        built.append(annotation)
    return {"id": task_id, "data": data, "annotations": built, "drafts": list(drafts), "predictions": []}


def ann(user, *class_ids, cancelled=False, none=False, comment="", updated="2026-01-01T00:00:00Z", raw=None):
    """An annotation factory (called with the task data, so that results use the task's own groups)."""
    def make(data):
        in_options = [c for c in class_ids if c in data["proposals"]]
        result = prediction_result(in_options, data) if in_options else []
        outside = [c for c in class_ids if c not in data["proposals"]]
        if outside:  # the server accepts choices that are not options: an API client may send them
            result.append({"from_name": "group_1", "to_name": "image", "type": "choices",
                           "value": {"choices": outside}})
        if none:
            result.append({"from_name": "none", "to_name": "image", "type": "choices",
                           "value": {"choices": ["none_of_these"]}})
        if comment:
            result.append({"from_name": "comment", "to_name": "image", "type": "textarea",
                           "value": {"text": [comment]}})
        return {"completed_by": user, "result": result, "was_cancelled": cancelled, "ground_truth": False,
                "lead_time": 2.0, "created_at": updated, "updated_at": updated}
    return make


def decide(catalogue, task, required=2):
    return dis.decide_task(task, catalogue, required, users={1: "u1@x", 2: "u2@x", 3: "u3@x"})


def test_agreed_when_two_annotators_choose_the_same_set_with_the_original(catalogue):
    rows, d = decide(catalogue, make_task(catalogue, 1, 0, [ann(1, "c0", "c1"), ann(2, "c1", "c0")]))
    assert (d.decision, d.reasons) == (dis.AGREED, ())
    assert d.agreed_labels == (0, 1)
    assert d.annotators == ("u1@x", "u2@x") and d.label_sets == ((0, 1), (0, 1))
    assert [r.status for r in rows] == ["submitted", "submitted"]


@pytest.mark.parametrize("annotations, reasons", [
    ([ann(1, "c0"), ann(2, "c0", "c2")], (dis.SETS_DIFFER,)),
    ([ann(1, "c2"), ann(2, "c2")], (dis.ORIGINAL_LABEL_MISSING,)),
    ([ann(1, "c0")], (dis.TOO_FEW_ANNOTATORS,)),
    ([ann(1, "c0"), ann(2, cancelled=True)], (dis.TOO_FEW_ANNOTATORS,)),
    ([ann(1, cancelled=True), ann(2, cancelled=True)], (dis.ALL_SKIPPED,)),
    ([], (dis.NO_ANNOTATIONS,)),
    ([ann(1, none=True), ann(2, none=True)], (dis.ORIGINAL_LABEL_MISSING,)),
    ([ann(1, "c0", "n99999999"), ann(2, "c0")], (dis.UNKNOWN_LABEL,)),
    ([ann(1), ann(2, "c0")], (dis.SETS_DIFFER, dis.EMPTY_ANNOTATION)),
    ([ann(1, "c1"), ann(2, "c1", "c2")], (dis.SETS_DIFFER,)),
])
def test_needs_refinement_with_every_reason(catalogue, annotations, reasons):
    _, d = decide(catalogue, make_task(catalogue, 2, 0, annotations))
    assert d.decision == dis.NEEDS_REFINEMENT
    assert d.reasons == reasons
    assert d.agreed_labels is None


def test_original_label_unknown_is_never_agreed(catalogue):
    _, d = decide(catalogue, make_task(catalogue, 3, None, [ann(1, "c0"), ann(2, "c0")]))
    assert d.reasons == (dis.ORIGINAL_LABEL_UNKNOWN,)


def test_one_annotator_twice_counts_once_with_the_last_submission(catalogue):
    task = make_task(catalogue, 4, 0, [
        ann(1, "c2", updated="2026-01-01T00:00:00Z"),
        ann(1, "c0", updated="2026-01-02T00:00:00Z"),
        ann(1, cancelled=True, updated="2026-01-03T00:00:00Z"),  # a later skip does not undo a submission
        ann(2, "c0"),
    ])
    rows, d = decide(catalogue, task)
    assert d.decision == dis.AGREED and d.agreed_labels == (0,)
    assert d.superseded == 2
    assert [(r.annotator, r.labels, r.superseded) for r in rows] == [("u1@x", (0,), 2), ("u2@x", (0,), 0)]
    # and a lone annotator with two submissions is still one annotator
    _, lone = decide(catalogue, make_task(catalogue, 5, 0, [ann(1, "c0"), ann(1, "c0")]))
    assert lone.reasons == (dis.TOO_FEW_ANNOTATORS,)


def test_drafts_are_counted_but_are_not_annotations(catalogue):
    draft = {"id": 9, "user": 3, "result": [], "created_at": "2026-01-01T00:00:00Z"}
    _, d = decide(catalogue, make_task(catalogue, 6, 0, [ann(1, "c0"), ann(2, "c0")], drafts=[draft]))
    assert d.decision == dis.AGREED and d.drafts == 1 and "u3@x" not in d.annotators


def test_labels_outside_the_proposals_are_kept_and_reported(catalogue):
    rows, d = decide(catalogue, make_task(catalogue, 7, 0, [ann(1, "c0", "c9"), ann(2, "c9", "c0")]))
    assert d.decision == dis.AGREED and d.agreed_labels == (0, 9)
    assert [r.outside_proposals for r in rows] == [(9,), (9,)]


def test_completed_by_as_a_dict_and_comments_and_skips(catalogue):
    task = make_task(catalogue, 8, 0, [ann({"id": 7, "email": "seven@x"}, "c0", comment="blurry"),
                                       ann(2, cancelled=True, comment="cannot tell")])
    rows, d = decide(catalogue, task, required=1)
    assert d.decision == dis.AGREED
    assert d.annotators == ("seven@x",) and d.skipped_by == ("u2@x",)
    assert d.comments == ("seven@x: blurry", "u2@x: cannot tell")
    assert rows[0].annotator_id == 7


def test_required_annotators_is_a_threshold(catalogue):
    task = make_task(catalogue, 9, 0, [ann(1, "c0"), ann(2, "c0"), ann(3, "c0")])
    assert decide(catalogue, task, required=3)[1].decision == dis.AGREED
    assert decide(catalogue, task, required=4)[1].reasons == (dis.TOO_FEW_ANNOTATORS,)


def write_export(path, tasks):
    path.write_text(json.dumps(tasks))
    return path


def test_analyse_export_writes_tables_and_summary(catalogue, tmp_path):
    tasks = [
        make_task(catalogue, 1, 0, [ann(1, "c0", "c1"), ann(2, "c0", "c1")], batch="b1"),  # agreed
        make_task(catalogue, 2, 1, [ann(1, "c1"), ann(2, "c2", comment="a dog")], batch="b1"),  # differ
        make_task(catalogue, 3, 2, [ann(1, "c2"), ann(3, cancelled=True)], batch="b2"),  # too few
        make_task(catalogue, 4, 3, [ann(2, "c3", "c4"), ann(3, "c3")], batch="b2"),  # differ (subset)
        make_task(catalogue, 5, 4, [], batch="b2"),  # nobody
    ]
    export = write_export(tmp_path / "export.json", tasks)
    summary = dis.analyse_exports([export], tmp_path / "out", catalogue, required=2,
                                  users={1: "u1@x", 2: "u2@x", 3: "u3@x"}, source={"projects": [5]}, progress=False)

    decisions = pq.read_table(tmp_path / "out" / dis.DECISIONS_FILE).to_pylist()
    assert [d["decision"] for d in decisions] == [dis.AGREED] + [dis.NEEDS_REFINEMENT] * 4
    assert [d["reasons"] for d in decisions] == [[], ["sets_differ"], ["too_few_annotators"], ["sets_differ"],
                                                 ["no_annotations"]]
    assert decisions[0]["agreed_labels"] == [0, 1] and decisions[1]["agreed_labels"] is None
    assert decisions[1]["chosen_labels"] == [1, 2] and decisions[1]["comments"] == ["u2@x: a dog"]
    assert decisions[3]["label_sets"] == [[3, 4], [3]]
    rows = pq.read_table(tmp_path / "out" / dis.ANNOTATIONS_FILE).to_pylist()
    assert len(rows) == 8 and sum(r["status"] == "skipped" for r in rows) == 1

    on_disk = json.loads((tmp_path / "out" / dis.SUMMARY_FILE).read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert (summary["images"], summary["agreed"], summary["needs_refinement"]) == (5, 1, 4)
    assert summary["agreed_rate"] == 0.2
    assert summary["reasons"]["sets_differ"] == 2 and summary["reasons"]["no_annotations"] == 1
    assert summary["annotations"]["submitted"] == 7 and summary["annotations"]["skipped"] == 1
    assert summary["source"]["projects"] == [5] and summary["source"]["exports"] == [str(export)]
    annotators = {a["annotator"]: a for a in summary["per_annotator"]}
    assert annotators["u1@x"]["submitted"] == 3 and annotators["u1@x"]["agreed"] == 1
    assert annotators["u3@x"]["skipped"] == 1 and annotators["u3@x"]["mean_lead_time_s"] == 2.0
    batches = {b["batch"]: b for b in summary["per_batch"]}
    assert batches["b1"] == {"batch": "b1", "images": 2, "agreed": 1, "needs_refinement": 1, "agreed_rate": 0.5}
    assert batches["b2"]["images"] == 3 and batches["b2"]["agreed"] == 0
    # pairwise: images 1, 2, 4 have two finished annotators; Jaccard 1, 0, 1/2
    assert summary["pairwise"]["images"] == 3
    assert summary["pairwise"]["mean_jaccard"] == pytest.approx(0.5)
    assert summary["pairwise"]["exact_match_rate"] == pytest.approx(1 / 3)
    fs = frozenset
    expected_alpha = krippendorff_alpha_masi([[fs({0, 1}), fs({0, 1})], [fs({1}), fs({2})], [fs({3, 4}), fs({3})]])
    assert summary["krippendorff_alpha_masi"] == pytest.approx(expected_alpha)
    assert summary["most_confused"][0]["id_a"] == "c1" and summary["most_confused"][0]["id_b"] == "c2"
    assert "agreed: 1 (20.0%)" in dis.format_summary(summary)


def test_bad_exports_fail_in_one_line_and_leave_nothing(catalogue, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UserError, match="does not exist"):
        dis.analyse_exports([tmp_path / "missing.json"], out, catalogue, progress=False)
    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": 1, "data": {"image_id": "a"}, "annotations": []}, {"id": ')
    with pytest.raises(UserError, match="not valid JSON") as error:
        dis.analyse_exports([broken], out, catalogue, progress=False)
    assert len(str(error.value).splitlines()) == 1
    (tmp_path / "text.json").write_text("not json")  # ijson's message for this spans several lines
    with pytest.raises(UserError, match="not valid JSON") as error:
        dis.analyse_exports([tmp_path / "text.json"], out, catalogue, progress=False)
    assert len(str(error.value).splitlines()) == 1
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(UserError, match="hold no tasks; is the project empty"):
        dis.analyse_exports([tmp_path / "empty.json"], out, catalogue, progress=False)
    twice = write_export(tmp_path / "twice.json", [make_task(catalogue, 1, 0), make_task(catalogue, 1, 0)])
    with pytest.raises(UserError, match="'img1' is also in an earlier task"):
        dis.analyse_exports([twice], out, catalogue, progress=False)
    assert not out.exists() or list(out.iterdir()) == []


def test_several_exports_are_batches_and_share_no_image(catalogue, tmp_path):
    first = write_export(tmp_path / "a.json", [make_task(catalogue, 1, 0, [ann(1, "c0"), ann(2, "c0")])])
    second = write_export(tmp_path / "b.json", [make_task(catalogue, 2, 0, [ann(1, "c0")]),
                                                make_task(catalogue, 3, 0, [ann(1, "c0"), ann(2, "c0")], batch="own")])
    summary = dis.analyse_exports([first, second], tmp_path / "out", catalogue, batches=["T (batch 1/2)", "T2"],
                                  progress=False)
    assert [(b["batch"], b["images"], b["agreed"]) for b in summary["per_batch"]] == [
        ("T (batch 1/2)", 1, 1), ("T2", 1, 0), ("own", 1, 1)]
    again = write_export(tmp_path / "c.json", [make_task(catalogue, 9, 0)] + [make_task(catalogue, 1, 0)])
    with pytest.raises(UserError, match=r"c.json, task 1: image 'img1' is also in an earlier task of .*a.json"):
        dis.analyse_exports([first, again], tmp_path / "out2", catalogue, progress=False)


def test_command_analyses_a_saved_export_without_a_server(catalogue, tmp_path, capsys):
    from multilabelfy.scripts import cli

    export = write_export(tmp_path / "saved.json", [make_task(catalogue, 1, 0, [ann(1, "c0"), ann(2, "c0")]),
                                                    make_task(catalogue, 2, 0, [ann(1, "c1")])])
    catalogue_csv = tmp_path / "classes.csv"
    catalogue_csv.write_text("id,name\n" + "".join(f"c{i},class {i}\n" for i in range(10)))
    assert cli.main(["disagreements", "--export", str(export), "--out", str(tmp_path / "out"),
                     "--catalogue", str(catalogue_csv), "--min-annotators", "2", "--no-progress"]) == 0
    assert "images: 2  agreed: 1 (50.0%)  needs refinement: 1 (50.0%)" in capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / dis.SUMMARY_FILE).read_text())
    assert summary["source"]["exports"] == [str(export)] and summary["per_batch"][0]["batch"] == "saved"
    assert cli.main(["disagreements", "--export", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o2"),
                     "--catalogue", str(catalogue_csv), "--no-progress"]) == 2
    assert "nope.json does not exist" in capsys.readouterr().err
