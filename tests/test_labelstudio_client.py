"""The Label Studio client: retries in one place, clear errors, and every method against the real server."""

import json
import uuid

import httpx
import pytest
import requests

from multilabelfy.errors import UserError
from multilabelfy.labelstudio.client import LabelStudioClient
from multilabelfy.service import free_port

CONFIG = """<View><Image name="image" value="$image"/>
<Choices name="labels" toName="image" choice="multiple" value="$options"/></View>"""


def _title(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


# --- retries and errors (no server needed) ---------------------------------------------------------------------


class _Flaky:
    def __init__(self, failures):
        self.failures = list(failures)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


@pytest.fixture
def offline_client(monkeypatch):
    """A client whose connection check is skipped and whose backoff does not sleep."""
    monkeypatch.setattr(LabelStudioClient, "current_user", lambda self: {"id": 1})
    monkeypatch.setattr("multilabelfy.labelstudio.client.time.sleep", lambda seconds: None)
    return LabelStudioClient("http://127.0.0.1:9", "secret-key-123", retries=3)


def _api_error(status):
    from label_studio_sdk.core.api_error import ApiError

    return ApiError(status_code=status, body={"detail": "boom"})


def test_idempotent_calls_retry_transient_failures(offline_client):
    flaky = _Flaky([httpx.ReadTimeout("slow"), _api_error(502), _api_error(500)])
    assert offline_client._call("read something", flaky) == "ok"
    assert flaky.calls == 4


def test_creating_calls_retry_only_when_nothing_can_have_happened(offline_client):
    refused = _Flaky([httpx.ConnectError("refused"), _api_error(503)])
    assert offline_client._call("create a thing", refused, idempotent=False) == "ok"
    timed_out = _Flaky([httpx.ReadTimeout("slow")])
    with pytest.raises(UserError, match="cannot reach Label Studio"):
        offline_client._call("create a thing", timed_out, idempotent=False)
    assert timed_out.calls == 1
    server_error = _Flaky([_api_error(500)])
    with pytest.raises(UserError, match="HTTP 500"):
        offline_client._call("create a thing", server_error, idempotent=False)
    assert server_error.calls == 1


def test_retries_give_up_with_one_line_error(offline_client):
    always = _Flaky([httpx.ConnectError("refused")] * 10)
    with pytest.raises(UserError) as error:
        offline_client._call("list projects", always)
    assert always.calls == 4
    assert "\n" not in str(error.value) and "LABEL_STUDIO_URL" in str(error.value)


def test_missing_settings_name_the_flag_and_the_variable(monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    with pytest.raises(UserError, match="--url or set LABEL_STUDIO_URL"):
        LabelStudioClient.from_env()
    with pytest.raises(UserError, match="--api-key or set LABEL_STUDIO_API_KEY"):
        LabelStudioClient.from_env(url="http://127.0.0.1:8080")


# --- against the real server -----------------------------------------------------------------------------------


@pytest.mark.label_studio
def test_wrong_url_and_wrong_key_are_clear_and_never_show_the_key(label_studio):
    with pytest.raises(UserError, match="cannot reach Label Studio"):
        LabelStudioClient(f"http://127.0.0.1:{free_port()}", label_studio.api_key, retries=1)
    wrong_key = "f" * 40
    with pytest.raises(UserError) as error:
        LabelStudioClient(label_studio.url, wrong_key, retries=0)
    assert "401" in str(error.value) and wrong_key not in str(error.value)
    assert label_studio.api_key not in repr(LabelStudioClient(label_studio.url, label_studio.api_key))


@pytest.mark.label_studio
def test_env_fallback_connects(label_studio, monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.api_key)
    assert LabelStudioClient.from_env().user["email"] == label_studio.credentials.username


@pytest.mark.label_studio
def test_find_project_matches_the_exact_title_only(ls_client):
    title = _title("client find")
    assert ls_client.find_project(title) is None
    project = ls_client.create_project(title, CONFIG)
    ls_client.create_project(title + " (batch 2/2)", CONFIG)
    assert ls_client.find_project(title)["id"] == project["id"]
    ls_client.create_project(title, CONFIG)
    with pytest.raises(UserError, match="2 projects titled"):
        ls_client.find_project(title)


@pytest.mark.label_studio
def test_overlap_is_set(ls_client):
    project = ls_client.create_project(_title("client overlap"), CONFIG)
    ls_client.set_overlap(project["id"], 2)
    stored = ls_client.get_project(project["id"])
    assert stored["maximum_annotations"] == 2 and stored["overlap_cohort_percentage"] == 100
    with pytest.raises(UserError, match="at least 1"):
        ls_client.set_overlap(project["id"], 0)
    with pytest.raises(UserError, match="404"):
        ls_client.get_project(999999)


@pytest.mark.label_studio
def test_local_storage_serves_images_under_the_document_root(ls_client, label_studio):
    folder = label_studio.document_root / "client-storage"
    folder.mkdir()
    (folder / "a.txt").write_text("pixels")
    project = ls_client.create_project(_title("client storage"), CONFIG)
    first = ls_client.ensure_local_storage(project["id"], folder)
    assert ls_client.ensure_local_storage(project["id"], folder)["id"] == first["id"]
    served = requests.get(f"{label_studio.url}/data/local-files/", params={"d": "client-storage/a.txt"},
                          headers={"Authorization": f"Token {label_studio.api_key}"}, timeout=10)
    assert served.status_code == 200 and served.text == "pixels"


@pytest.mark.label_studio
def test_chunked_import_pagination_update_and_users(ls_client):
    project = ls_client.create_project(_title("client tasks"), CONFIG)
    tasks = [{"data": {"image": f"https://example.org/{i}.jpg", "options": [{"value": "n1"}]}} for i in range(5)]
    ids = ls_client.import_tasks(project["id"], tasks, chunk_size=2, progress=False)
    assert len(set(ids)) == 5
    listed = list(ls_client.iter_tasks(project["id"], page_size=2))
    assert sorted(task["id"] for task in listed) == sorted(ids)
    # A last page that is exactly full: the totals stop the paging (the page after it would answer 404).
    assert len(list(ls_client.iter_tasks(project["id"], page_size=5))) == 5
    assert sorted(task["data"]["image"] for task in listed) == sorted(t["data"]["image"] for t in tasks)
    ls_client.update_task_data(ids[0], {**tasks[0]["data"], "note": "changed"})
    assert ls_client.get_task(ids[0])["data"]["note"] == "changed"
    email = f"annotator-{uuid.uuid4().hex[:6]}@example.org"
    user = ls_client.ensure_user(email, password="annotate-me-123")
    assert ls_client.ensure_user(email)["id"] == user["id"]
    assert sum(u["email"] == email for u in ls_client.list_users()) == 1


@pytest.mark.label_studio
def test_annotation_round_trips_through_a_snapshot_export(ls_client, tmp_path):
    project = ls_client.create_project(_title("client export"), CONFIG)
    [task_id] = ls_client.import_tasks(project["id"], [{"data": {"image": "https://example.org/x.jpg",
                                                                 "options": [{"value": "n1"}, {"value": "n2"}]}}],
                                       progress=False)
    result = [{"from_name": "labels", "to_name": "image", "type": "choices", "value": {"choices": ["n2"]}}]
    ls_client.create_annotation(task_id, result, completed_by=ls_client.user["id"])
    ls_client.create_prediction(task_id, result, model_version="test-model", score=0.5)
    path = ls_client.export_snapshot(project["id"], tmp_path / "out" / "export.json", poll_seconds=0.2)
    [exported] = json.loads(path.read_text())
    assert exported["id"] == task_id
    assert exported["annotations"][0]["result"][0]["value"] == {"choices": ["n2"]}
    assert exported["predictions"][0]["model_version"] == "test-model"
    assert [p.name for p in path.parent.iterdir()] == ["export.json"]
