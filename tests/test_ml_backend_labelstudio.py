"""The ML backend against the real Label Studio server: connect, retrieve, open a task, no duplicates.

The backend runs as it does in production: gunicorn with two workers (so /setup and /predict land in different
processes), reading images from the server's document root.
"""

from __future__ import annotations

import shutil

import pytest
import requests

from multilabelfy.annotation import tasks as template
from multilabelfy.catalogue import load_catalogue
from multilabelfy.errors import UserError
from multilabelfy.ml_backend.config import from_env
from multilabelfy.ml_backend.connect import connect_backend, retrieve_predictions
from multilabelfy.ml_backend.images import ImageError, ImageReader
from multilabelfy.ml_backend.serve import BackendServer
from multilabelfy.models import OFFLINE_LITE0
from multilabelfy.scripts import cli

pytestmark = [pytest.mark.label_studio, pytest.mark.slow]

TABBY, TIGER_CAT, EGYPTIAN_CAT, ESPRESSO = "n02123045", "n02123159", "n02124075", "n07920052"
BACKEND_ENV = {"MODEL_WEIGHTS": OFFLINE_LITE0, "DEVICE": "cpu", "BATCH_SIZE": "2", "PRECHECK": "threshold:0.5",
               "WORKERS": "2", "THREADS": "2"}


@pytest.fixture(scope="module")
def photos_folder(label_studio, photo_dataset):
    """The skimage photos under the server's document root: ``backend_photos/<wnid>/<file>``."""
    folder = label_studio.document_root / "backend_photos"
    shutil.copytree(photo_dataset, folder, dirs_exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def backend(label_studio, tmp_path_factory):
    env = {**BACKEND_ENV, "LABEL_STUDIO_URL": label_studio.url, "LABEL_STUDIO_API_KEY": label_studio.api_key,
           "LOCAL_FILES_DOCUMENT_ROOT": str(label_studio.document_root),
           "MODEL_DIR": str(tmp_path_factory.mktemp("backend_model_dir"))}
    with BackendServer(env, tmp_path_factory.mktemp("backend_log") / "backend.log") as server:
        yield server


PHOTOS = {"chelsea": "n02123045/chelsea.png", "coffee": "n07920052/coffee.jpg", "rocket": "n03773504/rocket.jpg",
          "camera": "n04069434/camera.png"}  # as the photo_dataset fixture lays them out


def image_url(photo: str, exists: bool = True) -> str:
    path = PHOTOS[photo] if exists else PHOTOS[photo].rsplit("/", 1)[0] + "/gone.jpg"
    return f"/data/local-files/?d=backend_photos/{path}"


@pytest.fixture(scope="module")
def project(ls_client, photos_folder):
    from importlib.resources import files

    label_config = files("multilabelfy.project_templates").joinpath("annotation.xml").read_text(encoding="utf-8")
    created = ls_client.create_project("ml backend test", label_config)
    ls_client.ensure_local_storage(created["id"], photos_folder)
    return created


def test_the_server_gets_20_scored_options_per_task_once(ls_client, label_studio, backend, project):
    catalogue = load_catalogue()
    with_options = template.build_task_data(
        image_url("chelsea"), "chelsea", None, [catalogue.index_of(c) for c in (TIGER_CAT, TABBY, EGYPTIAN_CAT)],
        catalogue)
    # Label Studio refuses tasks that lack the template's fields: "without options" means empty groups.
    empty = {group: [] for group in template.GROUPS}
    tasks = [
        {"data": with_options},
        {"data": {"image": image_url("coffee"), "original_label": ESPRESSO, "note": "kept", **empty}},
        {"data": {"image": image_url("rocket"), **empty}},
        {"data": {"image": image_url("rocket", exists=False), **empty}},
        {"data": {"image": image_url("camera"), **empty}},  # opened by an annotator below, never retrieved
    ]
    chelsea, coffee, rocket, missing, camera = ls_client.import_tasks(project["id"], tasks, progress=False)
    project_id = project["id"]

    # Connecting twice: one backend entry, no webhook to the backend, pre-labelling on.
    first = connect_backend(ls_client, project_id, backend.url + "/")
    second = connect_backend(ls_client, project_id, backend.url)
    assert first.created and not second.created and first.backend["id"] == second.backend["id"]
    assert [entry["url"].rstrip("/") for entry in ls_client.list_ml_backends(project_id)] == [backend.url]
    assert first.webhooks_removed == 1 and second.webhooks_removed == 0
    assert not [hook for hook in ls_client.list_webhooks(project_id) if hook["url"].startswith(backend.url)]
    assert ls_client.get_project(project_id)["model_version"] == "multilabelfy"

    version = from_env(BACKEND_ENV).model_version
    ls_client.retrieve_predictions(project_id, [chelsea, coffee, rocket, missing])

    # A task imported with options keeps them; its prediction is over them (tabby 0.40 < 0.5: none checked).
    assert ls_client.get_task(chelsea)["data"] == with_options
    [prediction] = ls_client.list_predictions(chelsea)
    assert prediction["model_version"] == version and 0.3 < prediction["score"] < 0.5
    assert prediction["result"] == []
    # Tasks without options got the top-20 written into their data, and a prediction consistent with them.
    for task_id, top in ((coffee, ESPRESSO), (rocket, "n03773504")):
        data = ls_client.get_task(task_id)["data"]
        assert [len(data[group]) for group in template.GROUPS] == [5, 5, 5, 5]
        assert len(set(data["proposals"])) == 20 and data["proposals"][0] == top
        [prediction] = ls_client.list_predictions(task_id)
        assert prediction["model_version"] == version and prediction["score"] == pytest.approx(
            data["proposal_probs"][0], abs=1e-5)
    coffee_data = ls_client.get_task(coffee)["data"]
    assert coffee_data["note"] == "kept" and coffee_data["original_label"] == ESPRESSO
    [coffee_prediction] = ls_client.list_predictions(coffee)
    assert coffee_prediction["result"] == template.prediction_result([ESPRESSO], coffee_data)  # 0.86 >= 0.5
    # The unreadable image fails alone and is asked for again next time.
    assert ls_client.list_predictions(missing) == []
    assert "task %d: image /data/local-files/?d=backend_photos" % missing in backend.log_path.read_text()

    # Asking again (through either worker) duplicates nothing.
    for _ in range(2):
        ls_client.retrieve_predictions(project_id, [chelsea, coffee, rocket, missing])
    for task_id in (chelsea, coffee, rocket):
        assert len(ls_client.list_predictions(task_id)) == 1

    # An annotator opening a task without predictions makes the server ask the backend for it; the task comes
    # back with the options the backend has just written, so the first view already shows them.
    opened = ls_client.get_task(camera)
    assert [len(opened["data"][group]) for group in template.GROUPS] == [5, 5, 5, 5]
    [prediction] = ls_client.list_predictions(camera)
    assert prediction["model_version"] == version
    assert ls_client.get_task(camera)["data"]["proposals"][:3] == ["n04485082", "n02841315", "n04069434"]  # tripod
    ls_client.get_task(camera)
    assert len(ls_client.list_predictions(camera)) == 1

    # The command line, run again, changes nothing.
    assert cli.main(["connect-backend", "--project", str(project_id), "--url", backend.url, "--ls-url",
                     label_studio.url, "--api-key", label_studio.api_key]) == 0
    assert len(ls_client.list_ml_backends(project_id)) == 1
    assert retrieve_predictions(ls_client, project_id, chunk_size=2) == 5
    for task_id in (chelsea, coffee, rocket, camera):
        assert len(ls_client.list_predictions(task_id)) == 1


def upload_image(label_studio, ls_client, path) -> str:
    """Upload a file through Label Studio's import (into a scratch project); returns its /data/upload/ URL."""
    scratch = ls_client.create_project("upload scratch", '<View><Image name="image" value="$image"/></View>')
    with open(path, "rb") as handle:  # test set-up only: the client has no upload call, the package never uploads
        response = requests.post(f"{label_studio.url}/api/projects/{scratch['id']}/import", timeout=30,
                                 headers={"Authorization": f"Token {label_studio.api_key}"},
                                 files={"file": (path.name, handle, "image/png")})
    response.raise_for_status()
    [task] = list(ls_client.iter_tasks(scratch["id"], with_annotations=False))
    return task["data"]["image"]


def test_label_studio_serves_images_to_the_backend_with_the_key(ls_client, label_studio, project, photos_folder,
                                                                backend):
    reader = ImageReader(label_studio.url, None, ls_client.download)  # no shared disk: download with the key
    assert reader.read(image_url("chelsea")).size == (451, 300)
    assert requests.get(label_studio.url + image_url("chelsea"), timeout=10).status_code in (401, 403)
    other_name = label_studio.url.replace("127.0.0.1", "localhost")  # the same server under another name
    with pytest.raises(ImageError, match="set LABEL_STUDIO_URL to the same address"):
        reader.read(other_name + image_url("chelsea"))
    with pytest.raises(UserError, match="not found while trying to download"):
        ls_client.download(image_url("chelsea", exists=False))

    # An uploaded image: the backend downloads it with its API key.
    uploaded = upload_image(label_studio, ls_client, photos_folder / PHOTOS["coffee"])
    assert uploaded.startswith("/data/upload/")
    assert reader.read(uploaded).size == (600, 400)
    [task_id] = ls_client.import_tasks(
        project["id"], [{"data": {"image": uploaded, **{group: [] for group in template.GROUPS}}}], progress=False)
    connect_backend(ls_client, project["id"], backend.url)
    ls_client.retrieve_predictions(project["id"], [task_id])
    assert ls_client.get_task(task_id)["data"]["proposals"][0] == ESPRESSO
    assert len(ls_client.list_predictions(task_id)) == 1


def test_connecting_to_a_wrong_project_is_a_one_line_error(label_studio, backend, capsys):
    assert cli.main(["connect-backend", "--project", "999999", "--url", backend.url, "--ls-url", label_studio.url,
                     "--api-key", label_studio.api_key]) == 2
    err = capsys.readouterr().err
    assert err.startswith("multilabelfy: error: Label Studio at ") and "project 999999" in err
    assert err.count("\n") == 1


def test_a_backend_behind_basic_auth_is_connected_with_its_credentials(ls_client, label_studio, project, tmp_path,
                                                                       monkeypatch, capsys):
    env = {**BACKEND_ENV, "WORKERS": "1", "LABEL_STUDIO_URL": label_studio.url,
           "LABEL_STUDIO_API_KEY": label_studio.api_key, "LOCAL_FILES_DOCUMENT_ROOT": str(label_studio.document_root),
           "MODEL_DIR": str(tmp_path), "BASIC_AUTH_USER": "labelstudio", "BASIC_AUTH_PASS": "s3cret-pass"}
    project_id = ls_client.create_project("ml backend basic auth", project["label_config"])["id"]
    with BackendServer(env, tmp_path / "backend.log") as guarded:
        assert requests.get(f"{guarded.url}/health", timeout=5).status_code == 401
        with pytest.raises(UserError, match="could not connect ML backend"):
            connect_backend(ls_client, project_id, guarded.url)  # Label Studio's check gets 401
        assert ls_client.list_ml_backends(project_id) == []
        monkeypatch.setenv("BASIC_AUTH_USER", "labelstudio")
        monkeypatch.setenv("BASIC_AUTH_PASS", "s3cret-pass")
        for _ in range(2):
            assert cli.main(["connect-backend", "--project", str(project_id), "--url", guarded.url, "--basic-auth",
                             "--ls-url", label_studio.url, "--api-key", label_studio.api_key]) == 0
        [entry] = ls_client.list_ml_backends(project_id)
        assert entry["auth_method"] == "BASIC_AUTH" and entry["basic_auth_user"] == "labelstudio"
        assert "s3cret-pass" not in capsys.readouterr().out


def test_a_project_pre_labelling_with_its_own_predictions_keeps_them(ls_client, backend, project):
    other = ls_client.create_project("ml backend refinement-like", project["label_config"])["id"]
    data = {"image": image_url("chelsea"), **{group: [] for group in template.GROUPS}}
    ls_client.import_tasks(other, [{"data": data, "predictions": [
        {"model_version": "multilabelfy-refinement", "score": 1.0, "result": []}]}], progress=False)
    ls_client.update_project(other, show_collab_predictions=True, model_version="multilabelfy-refinement")
    connection = connect_backend(ls_client, other, backend.url)
    assert connection.created and len(ls_client.list_ml_backends(other)) == 1
    assert ls_client.get_project(other)["model_version"] == "multilabelfy-refinement"
