"""Benchmark of ``multilabelfy propose`` (run by hand; prints figures, asserts nothing).

Default mode: images/s of the batched proposal run (DataLoader workers, batches, chunked Parquet) against a naive
loop that opens, transforms and classifies one image at a time; same model, same images, one run each, reported
with their ratio, and the model's pure forward images/s beside them (how close the run gets to the model).

``--synthetic-forward``: only the pure forward images/s on random tensors for each of ``--models`` (random
weights; speed does not depend on them), through the same engine (bf16 + channels_last on CUDA).

    .venv/bin/python benchmarks/bench_propose.py --images 256 --workers 2
    .venv/bin/python benchmarks/bench_propose.py --synthetic-forward --models efficientnet_lite0,vit_large_patch16_224
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from timm.data import resolve_data_config

from multilabelfy.catalogue import load_catalogue
from multilabelfy.dataset import load_image, read_dataset
from multilabelfy.models import OFFLINE_LITE0, RANDOM, Classifier, create_classifier
from multilabelfy.proposals.engine import TopKEngine
from multilabelfy.proposals.run import run_proposals

PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "cat", "immunohistochemistry", "hubble_deep_field")


def make_dataset(root: Path, n_images: int) -> Path:
    """``n_images`` JPEGs cycled from skimage's colour photos, in one class folder (tabby's, label irrelevant)."""
    import skimage.data
    from PIL import Image

    folder = root / "n02123045"
    folder.mkdir(parents=True)
    photos = [Image.fromarray(getattr(skimage.data, name)()) for name in PHOTOS]
    for i in range(n_images):
        photos[i % len(photos)].save(folder / f"img_{i:06d}.jpg", quality=90)
    return root


def naive_images_per_s(classifier: Classifier, images: list[str], top_k: int, device: torch.device) -> float:
    """One image at a time: open, transform, forward, top-k. The baseline a first script would write."""
    model = classifier.model.to(device)
    start = time.perf_counter()
    with torch.inference_mode():
        for image in images:
            pixels = classifier.transform(load_image(image)).unsqueeze(0).to(device)
            model(pixels).softmax(-1).topk(top_k)
    _sync(device)
    return len(images) / (time.perf_counter() - start)


def forward_images_per_s(classifier: Classifier, batch_size: int, device: str | None, seconds: float = 10.0) -> float:
    """Pure forward throughput on random tensors already on the device (no decoding, no transfer)."""
    engine = TopKEngine(classifier, top_k=5, device=device, batch_size=batch_size)
    size = resolve_data_config({}, model=classifier.model)["input_size"]  # (3, H, W) the transform produces
    pixels = torch.randn(batch_size, *size, device=engine.device)
    engine.predict_tensors(pixels)  # warm-up: cuDNN autotuning, lazy allocations
    _sync(engine.device)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or done == 0:
        engine.predict_tensors(pixels)
        done += batch_size
    _sync(engine.device)
    return done / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_propose(args: argparse.Namespace) -> None:
    classifier = create_classifier(args.model, args.weights)
    catalogue = load_catalogue()
    with tempfile.TemporaryDirectory() as tmp:
        records = read_dataset(make_dataset(Path(tmp) / "data", args.images), catalogue)
        device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        naive_records = records[:args.naive_images] if args.naive_images else records
        naive = naive_images_per_s(classifier, [r.image for r in naive_records], args.top_k, device)
        start = time.perf_counter()
        summary = run_proposals(records, classifier, catalogue, Path(tmp) / "p.parquet", top_k=args.top_k,
                                batch_size=args.batch_size, workers=args.workers, device=args.device)
        batched = summary.computed / (time.perf_counter() - start)
    forward = forward_images_per_s(classifier, args.batch_size, args.device, args.forward_seconds)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"torch threads {torch.get_num_threads()}, model {args.model} ({classifier.weights}), "
          f"{len(records)} images, batch {args.batch_size}, workers {args.workers}, top-k {args.top_k}")
    print(f"naive loop ({len(naive_records)} images):  {naive:8.1f} images/s")
    print(f"propose (end to end):     {batched:8.1f} images/s   = {batched / naive:.2f}x the naive loop")
    print(f"pure forward (random x):  {forward:8.1f} images/s   propose reaches {100 * batched / forward:.0f}% of it")


def bench_forward(args: argparse.Namespace) -> None:
    for name in args.models.split(","):
        classifier = create_classifier(name, RANDOM)
        rate = forward_images_per_s(classifier, args.batch_size, args.device, args.forward_seconds)
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        print(f"{name:28s} pure forward {rate:9.1f} images/s  (device {device}, batch {args.batch_size})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic-forward", action="store_true", help="only pure forward images/s per model")
    parser.add_argument("--models", default="efficientnet_lite0,vit_large_patch16_224",
                        help="models for --synthetic-forward (random weights)")
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--weights", default=OFFLINE_LITE0)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--naive-images", type=int, default=0, help="time the naive loop on the first N only (0: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--device", default=None)
    parser.add_argument("--forward-seconds", type=float, default=10.0)
    args = parser.parse_args()
    bench_forward(args) if args.synthetic_forward else bench_propose(args)


if __name__ == "__main__":
    main()
