"""`multilabelfy demo` (what `make demo` runs): photos, real proposals, a local Label Studio, the project."""

import argparse
import json
import shutil

import pytest

from multilabelfy.labelstudio.client import LabelStudioClient
from multilabelfy.scripts import demo

pytestmark = [pytest.mark.label_studio, pytest.mark.slow]


def _demo_arguments(label_studio, tmp_path, *extra):
    """The demo's own parser with our options (new options get their defaults); a migrated Label Studio data dir
    is copied in, so that the demo's server starts in seconds."""
    shutil.copytree(label_studio.seed_dir, tmp_path / "label-studio")
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    # The session server's port is taken: the demo must pick a free one. The ML backend has its own tests.
    return parser.parse_args(["--data-dir", str(tmp_path), "--port", str(label_studio.port), "--no-wait",
                              "--no-backend", *extra])


def test_demo_builds_the_project_and_a_rerun_adds_nothing(label_studio, tmp_path, capsys, monkeypatch):
    captured = {}
    real_start = demo.start_label_studio

    def start_and_remember(*args):
        captured["server"] = real_start(*args)
        return captured["server"]

    monkeypatch.setattr(demo, "start_label_studio", start_and_remember)
    args = _demo_arguments(label_studio, tmp_path)
    assert demo.run(args) == 0
    out = capsys.readouterr().out
    server = captured["server"]
    assert server.pid is None  # stopped on the way out
    assert "port" in out and "is taken" in out
    assert f"Log in as {server.credentials.username} with password {server.credentials.password}" in out
    assert server.credentials.token not in out
    assert (tmp_path / "documents" / "photos" / "chelsea.png").is_file()

    with server:
        client = LabelStudioClient(server.url, server.api_key)
        project = client.find_project(demo.TITLE)
        assert f"/projects/{project['id']}/data" in out
        tasks = {t["data"]["image_id"]: t["data"] for t in client.iter_tasks(project["id"])}
        assert sorted(tasks) == sorted(demo.PHOTOS)
        assert all(len(data["proposals"]) == 20 for data in tasks.values())
        # Real weights: the cat's and the coffee's own classes lead their proposals.
        assert tasks["chelsea"]["proposals"][0] in {"n02123045", "n02123159", "n02124075"}  # tabby/tiger/Egyptian
        assert tasks["coffee"]["proposals"][0] == "n07920052"  # espresso
        assert "<img" in tasks["coffee"]["group_1"][0]["html"]  # espresso has an exemplar: the coffee photo
        assert client.get_project(project["id"])["maximum_annotations"] == 2

    assert demo.run(args) == 0
    rerun = capsys.readouterr().out
    assert f"/projects/{project['id']}/data" in rerun
    with captured["server"]:
        client = LabelStudioClient(captured["server"].url, captured["server"].api_key)
        assert sum(1 for _ in client.iter_tasks(project["id"])) == len(demo.PHOTOS)


def test_simulated_demo_runs_every_stage_to_the_report(label_studio, tmp_path, capsys):
    assert demo.run(_demo_arguments(label_studio, tmp_path, "--simulate")) == 0
    out = capsys.readouterr().out
    for step in ("multilabelfy disagreements", "multilabelfy spawn-refinement", "multilabelfy finalize",
                 "multilabelfy report"):
        assert f"$ {step} " in out
    labels = json.loads((tmp_path / "final" / "labels.json").read_text())
    assert len(labels) == len(demo.PHOTOS)  # one label set per photo, in manifest order
    decisions = json.loads((tmp_path / "analysis" / "summary.json").read_text())
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["num_images"] == len(demo.PHOTOS) == decisions["images"]
    counts = {str(n): sum(len(s) == n for s in labels) for n in {len(s) for s in labels}}
    assert {k: v for k, v in summary["label_count_distribution"].items() if v} == counts
    assert list(summary["models"]) == ["efficientnet_lite0"]
    assert (tmp_path / "report" / "index.html").is_file()
