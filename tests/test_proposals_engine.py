"""The top-k engine: ordering, probabilities, label ranks, batching."""

import numpy as np
import pytest
import torch
from PIL import Image

from multilabelfy.errors import UserError
from multilabelfy.models import RANDOM, create_classifier
from multilabelfy.proposals.engine import TopKEngine


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return create_classifier("test_resnet", RANDOM)


def full_probs(classifier, pixels):
    with torch.inference_mode():
        return classifier.model(pixels).float().softmax(-1).numpy()


def test_topk_matches_a_full_softmax_and_ranks_labels(tiny):
    torch.manual_seed(1)
    pixels = torch.randn(5, 3, 160, 160)
    probs = full_probs(tiny, pixels)
    labels = torch.tensor([0, 999, -1, 3, int(probs[4].argmax())])
    top = TopKEngine(tiny, top_k=20, device="cpu", batch_size=2).predict_tensors(pixels, labels)

    assert top.indices.shape == (5, 20) and top.probs.shape == (5, 20) and top.probs.dtype == np.float32
    expected = np.argsort(-probs, axis=1)[:, :20]
    np.testing.assert_array_equal(top.indices, expected)
    np.testing.assert_allclose(top.probs, np.take_along_axis(probs, expected, 1), rtol=1e-5)
    assert np.all(np.diff(top.probs, axis=1) <= 0)
    for row, label in enumerate(labels.tolist()):
        want = -1 if label < 0 else 1 + int((probs[row] > probs[row, label]).sum())
        assert top.label_rank[row] == want
    assert top.label_rank[4] == 1


def test_predict_images_batches_and_applies_the_transform(tiny):
    images = [Image.new("RGB", (200, 120), color) for color in ("red", "green", "blue")] + [Image.new("L", (50, 80))]
    engine = TopKEngine(tiny, top_k=5, device="cpu", batch_size=3)
    top = engine.predict_images(images)
    assert top.indices.shape == (4, 5) and top.label_rank is None
    one_by_one = [engine.predict_images([image]) for image in images]
    np.testing.assert_array_equal(top.indices, np.concatenate([t.indices for t in one_by_one]))
    assert engine.predict_images([]).indices.shape == (0, 5)


def test_top_k_larger_than_the_class_count_is_refused(tiny):
    with pytest.raises(UserError, match="--top-k must be between 1 and the model's 1000 classes"):
        TopKEngine(tiny, top_k=1001, device="cpu")
