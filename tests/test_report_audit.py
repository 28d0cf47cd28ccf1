"""``multilabelfy report --audit``: the audit folders' headline figures land in summary.json and an Audit section
of index.html that links each audit's page; a folder that is no audit stops the report before it writes anything."""

import csv
import json
import os

import pytest
from test_audit_cli import ROWS, _proposals, small_split  # noqa: F401 (small_split is a fixture)
from test_report import _run, dataset  # noqa: F401 (dataset is a fixture)

from multilabelfy.scripts import cli


@pytest.fixture
def audits(dataset, small_split):  # noqa: F811
    """Real outputs of `audit duplicates`, `audit classes` and `audit compare` beside the report's inputs."""
    tmp_path, _ = dataset
    base = ["--workers", "0", "--no-progress", "--no-embeddings"]
    assert cli.main(["audit", "duplicates", str(tmp_path / "val"), "--against", str(tmp_path / "train"),
                     "--out", str(tmp_path / "audits" / "dups"), *base]) == 0
    (tmp_path / "cls").mkdir()
    assert cli.main(["audit", "classes", "--proposals", str(_proposals(tmp_path / "cls", ROWS)),
                     "--out", str(tmp_path / "audits" / "classes")]) == 0
    # a second relabeling that differs from labels.json on two of the eight images
    (tmp_path / "other.json").write_text(json.dumps([[0, 1], [2], [], [6], [4], [8], [9, 3, 2], [5]]))
    assert cli.main(["audit", "compare", str(tmp_path / "labels.json"), str(tmp_path / "other.json"),
                     "--manifest", str(tmp_path / "manifest.csv"), "--catalogue", str(tmp_path / "classes.csv"),
                     "--out", str(tmp_path / "audits" / "cmp")]) == 0
    return tmp_path, [tmp_path / "audits" / name for name in ("dups", "classes", "cmp")]


def test_report_shows_and_links_the_audits(audits):
    tmp_path, folders = audits
    assert _run(tmp_path, "--audit", *map(str, folders)) == 0
    out = tmp_path / "out"
    entries = json.loads((out / "summary.json").read_text())["audit"]
    assert [e["kind"] for e in entries] == ["duplicates", "classes", "compare"]
    written = [json.loads((f / "summary.json").read_text()) for f in folders]
    for entry, summary, folder in zip(entries, written, folders):
        assert entry["figures"] == {k: summary[k] for k in entry["figures"]}
        assert entry["page"] == f"../audits/{folder.name}/index.html"
        assert (out / entry["page"]).resolve() == (folder / "index.html").resolve()
    dups, classes, cmp = (e["figures"] for e in entries)
    # the chelsea copies (val: tabby and a differently labelled small copy; train: an exact copy) are one group
    assert (dups["groups"], dups["conflicting_groups"], dups["cross_split_groups"], dups["removable"]) == (1, 1, 1, 2)
    assert classes["synonym_pairs"] == 1 and classes["co-occurring_pairs"] >= 1
    assert (cmp["images_compared"], cmp["all_agree"], cmp["all_agree_rate"]) == (8, 6, 0.75)
    page = (out / "index.html").read_text()
    section = page[page.index("<h2>Audit</h2>"):]
    for entry in entries:
        assert f"href='{entry['page']}'" in section
    assert "groups with conflicting labels" in section and "synonym pairs" in section and "75.00%" in section
    # without --audit the report has neither the entry nor the section
    assert _run(tmp_path, out="plain") == 0
    assert "audit" not in json.loads((tmp_path / "plain" / "summary.json").read_text())
    assert "<h2>Audit</h2>" not in (tmp_path / "plain" / "index.html").read_text()


def test_a_suspects_ranking_shows_its_counts_without_a_link(dataset):  # noqa: F811
    tmp_path, _ = dataset
    (tmp_path / "sus").mkdir()
    ranking = tmp_path / "suspects.csv"
    assert cli.main(["audit", "suspects", "--proposals", str(_proposals(tmp_path / "sus", ROWS)),
                     "--out", str(ranking)]) == 0
    assert _run(tmp_path, "--audit", str(ranking)) == 0
    [entry] = json.loads((tmp_path / "out" / "summary.json").read_text())["audit"]
    with open(ranking, newline="") as handle:
        kinds = [row["kind"] for row in csv.DictReader(handle)]
    assert entry == {"kind": "suspects", "folder": str(ranking), "page": None,
                     "figures": {"images": len(kinds), "wrong": kinds.count("wrong"),
                                 "incomplete": kinds.count("incomplete"), "unsure": kinds.count("unsure")}}
    assert entry["figures"]["wrong"] == 5  # as test_audit_cli's ranking of the same rows says
    section = (tmp_path / "out" / "index.html").read_text().split("<h2>Audit</h2>")[1]
    assert f"<h3>suspects: {ranking}</h3>" in section and "label likely wrong" in section


def test_a_folder_that_is_no_audit_stops_the_report(dataset, capsys):  # noqa: F811
    tmp_path, _ = dataset
    (tmp_path / "notaudit").mkdir()
    (tmp_path / "notaudit" / "summary.json").write_text(json.dumps({"images": 3}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "summary.json").write_text("{oops")
    for folder, message in (("missing", "has no summary.json"), ("imgs", "has no summary.json"),
                            ("notaudit", "is not an audit summary"), ("broken", "is not valid JSON")):
        assert _run(tmp_path, "--audit", str(tmp_path / folder)) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
        assert not os.path.exists(tmp_path / "out")
