"""Models and weights: offline ImageNet weights give real predictions; bad specs give one-line errors."""

import pytest
import torch
from PIL import Image

from multilabelfy.catalogue import load_catalogue
from multilabelfy.errors import UserError
from multilabelfy.models import OFFLINE_LITE0, RANDOM, create_classifier
from multilabelfy.proposals.engine import TopKEngine


@pytest.fixture(scope="module")
def lite0():
    return create_classifier("efficientnet_lite0", OFFLINE_LITE0)


def test_offline_lite0_knows_chelsea_is_a_cat(lite0, photo_dataset):
    image = Image.open(photo_dataset / "n02123045" / "chelsea.png")
    top = TopKEngine(lite0, top_k=3, device="cpu").predict_images([image])
    names = [load_catalogue()[i].name for i in top.indices[0]]
    assert names == ["tabby", "tiger cat", "Egyptian cat"]
    assert top.probs[0, 0] == pytest.approx(0.40, abs=0.05)


def test_offline_lite0_holds_the_packages_tensors_in_order(lite0, lite0_weights):
    source = list(torch.load(lite0_weights, map_location="cpu", weights_only=True).values())
    loaded = list(lite0.model.state_dict().values())
    assert len(source) == len(loaded) == 296
    assert all(torch.equal(a, b) for a, b in zip(source, loaded))


def test_classifier_carries_the_models_eval_transform(lite0):
    assert lite0.num_classes == 1000 and lite0.weights == OFFLINE_LITE0 and not lite0.model.training
    pixels = lite0.transform(Image.new("RGB", (451, 300)))
    assert pixels.shape == (3, 224, 224)


def test_local_checkpoint_round_trips_also_nested_and_with_another_head(tmp_path):
    source = create_classifier("test_resnet", RANDOM)
    source.model.reset_classifier(7)
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.model.state_dict().items()}}, path)
    loaded = create_classifier("test_resnet", str(path))
    assert loaded.num_classes == 7 and loaded.weights == str(path)
    for key, value in source.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)


@pytest.mark.parametrize(
    ("model", "weights", "message"),
    [
        ("no_such_model", RANDOM, "unknown timm model 'no_such_model'"),
        ("test_resnet", "/nonexistent/ckpt.pth", "checkpoint /nonexistent/ckpt.pth does not exist"),
        ("test_resnet", OFFLINE_LITE0, "holds efficientnet_lite0 weights, not test_resnet"),
    ],
)
def test_bad_model_or_weights_is_one_line_user_error(model, weights, message):
    with pytest.raises(UserError, match=message) as error:
        create_classifier(model, weights)
    assert "\n" not in str(error.value)


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "vit.pth"
    torch.save(create_classifier("test_vit", RANDOM).model.state_dict(), path)
    with pytest.raises(UserError, match="does not fit test_resnet"):
        create_classifier("test_resnet", str(path))


def test_hub_weights_that_cannot_be_fetched_are_one_line(monkeypatch):
    import timm

    def offline(name, pretrained=False, **kwargs):
        if pretrained:
            raise OSError("We couldn't connect to 'https://huggingface.co'\nsecond line of the hub's message")
        return real_create(name, pretrained=pretrained, **kwargs)

    real_create = timm.create_model
    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(UserError) as error:
        create_classifier("efficientnet_lite0")
    message = str(error.value)
    assert "\n" not in message and "could not load pretrained weights for efficientnet_lite0" in message
    assert f"--weights {OFFLINE_LITE0}" in message
