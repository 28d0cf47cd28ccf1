"""Exact and near duplicates within a split and across two splits (e.g. val against train).

Three fingerprints per image, all from one decode:

- **exact**: SHA-256 of the *decoded* RGB pixels (with the size), not of the file bytes: a PNG re-saved with
  other compression settings, or the same photo stored under two names, is an exact duplicate; a re-encoded JPEG
  (its pixels change) is not, it is a near duplicate.
- **perceptual hash** (pHash, 64 bits: sign of the 8x8 low-frequency DCT of a 32x32 grey thumbnail against its
  median): survives resizing, re-encoding and brightness shifts; costs no model. Pairs within ``max_hamming``
  bits are found without comparing all pairs, by multi-index hashing (split the 64 bits into ``max_hamming + 1``
  chunks: two hashes that close agree exactly on at least one chunk, so only same-bucket pairs are compared).
- **embedding**: the timm model's pooled features (``forward_head(forward_features(x), pre_logits=True)``),
  L2-normalised; pairs with cosine similarity at least ``min_cosine`` among each image's ``neighbours`` nearest,
  from an exact blocked search with bounded memory, or a faiss IVF index for large sets (``faiss-cpu``).

A pair is a duplicate when its pixels match (``exact``) or it passes either near test (``near``); duplicates are
grouped into connected components, and each group lists the labels its copies carry and whether they conflict.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import PIL.Image
import torch
from tqdm import tqdm

from multilabelfy.dataset import ImageRecord, load_image
from multilabelfy.errors import UserError

log = logging.getLogger(__name__)

PHASH_BITS = 64
# Measured on 18 skimage photos with efficientnet_lite0 (ImageNet weights): resized, JPEG q60 and +20% brightness
# copies have pHash distance 0 and cosine 0.84-1.0; 5% crops distance 10-18 and cosine 0.92-0.97; different
# photos distance >= 20 and cosine <= 0.60.
DEFAULT_MAX_HAMMING = 4  # pHash bits
DEFAULT_MIN_COSINE = 0.85
DEFAULT_NEIGHBOURS = 10
EXACT_SEARCH_LIMIT = 50_000  # above this many vectors "auto" uses faiss when installed (see the benchmark)
_BLOCK_BYTES = 256 * 2**20  # memory for one block of the exact search's similarity matrix


# --- fingerprints of one image -------------------------------------------------------------------------------


def pixel_hash(image: PIL.Image.Image) -> str:
    """SHA-256 (hex) of the decoded RGB pixels and the size: equal for pixel-identical images in any file format."""
    rgb = image.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def perceptual_hash(image: PIL.Image.Image) -> int:
    """64-bit pHash as an int: DCT of a 32x32 grey thumbnail, bit set where a low-frequency coefficient
    (the 8x8 corner) exceeds their median. Close hashes (small Hamming distance) mean similar-looking images."""
    from scipy.fft import dctn

    grey = np.asarray(image.convert("L").resize((32, 32), PIL.Image.Resampling.LANCZOS), dtype=np.float64)
    low = dctn(grey, norm="ortho")[:8, :8].ravel()
    # the median leaves out the DC term (overall brightness), so a brightness shift keeps the bits
    bits = low > np.median(low[1:])
    return int(np.packbits(bits).view(">u8")[0])


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance between uint64 hashes (broadcasting), as int64."""
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64))).astype(np.int64)


# --- fingerprints of a dataset -------------------------------------------------------------------------------


@dataclass
class Fingerprints:
    """N images' fingerprints in one order (one or more splits).

    ``image_ids``, ``images`` (paths/URLs), ``splits``: N strings; ``labels``: int64 (N,), -1 unknown;
    ``pixel_sha256``: N hex strings; ``phash``: uint64 (N,); ``embeddings``: float32 (N, D) unit vectors, or
    ``None`` when not computed. ``errors``: (image_id, reason) of images that could not be read (not in N).
    """

    image_ids: list[str]
    images: list[str]
    splits: list[str]
    labels: np.ndarray
    pixel_sha256: list[str]
    phash: np.ndarray
    embeddings: np.ndarray | None
    errors: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.image_ids)

    @staticmethod
    def concat(parts: Sequence["Fingerprints"]) -> "Fingerprints":
        with_embeddings = [p.embeddings is not None for p in parts]
        if any(with_embeddings) and not all(with_embeddings):
            raise ValueError("cannot mix fingerprints with and without embeddings")
        return Fingerprints(
            image_ids=[i for p in parts for i in p.image_ids],
            images=[i for p in parts for i in p.images],
            splits=[s for p in parts for s in p.splits],
            labels=np.concatenate([p.labels for p in parts]),
            pixel_sha256=[h for p in parts for h in p.pixel_sha256],
            phash=np.concatenate([p.phash for p in parts]),
            embeddings=np.concatenate([p.embeddings for p in parts]) if all(with_embeddings) else None,
            errors=[e for p in parts for e in p.errors],
        )


class _FingerprintDataset(torch.utils.data.Dataset):
    """Records as ``(index, pixels or None, sha256, phash, error)``: one decode gives every fingerprint."""

    def __init__(self, records: Sequence[ImageRecord], transform):
        self.records = records
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int):
        try:
            image = load_image(self.records[index].image)
            pixels = self.transform(image) if self.transform is not None else None
            return index, pixels, pixel_hash(image), perceptual_hash(image), ""
        except Exception as error:  # a corrupt or missing image is reported, not raised
            return index, None, "", 0, f"{type(error).__name__}: {error}".splitlines()[0]


def _collate(items):
    return items  # variable content (failures, optional pixels): stacked by the consumer


def embed(model: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """Pooled, L2-normalised image embeddings (B, D) of a timm classifier, from its pre-logits features."""
    with torch.inference_mode():
        features = model.forward_head(model.forward_features(pixels), pre_logits=True)
        return torch.nn.functional.normalize(features.float().flatten(1), dim=1)


def fingerprint_records(records: Sequence[ImageRecord], split: str, classifier=None, batch_size: int = 64,
                        workers: int = 0, device: str | None = None, progress: bool = True) -> Fingerprints:
    """Fingerprints of ``records`` (from ``multilabelfy.dataset.read_dataset``), tagged with ``split``.

    ``classifier``: a ``multilabelfy.models.Classifier`` for embeddings (its own eval transform), or ``None``
    for hashes only. Unreadable images are listed in ``errors`` and left out.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = classifier.model.eval().to(device) if classifier is not None else None
    loader = torch.utils.data.DataLoader(
        _FingerprintDataset(records, classifier.transform if classifier is not None else None),
        batch_size=batch_size, num_workers=workers, collate_fn=_collate)
    kept: list[int] = []
    shas: list[str] = []
    phashes: list[int] = []
    vectors: list[np.ndarray] = []
    errors: list[tuple[str, str]] = []
    with tqdm(total=len(records), desc=f"fingerprints {split}", unit="image", disable=not progress) as bar:
        for items in loader:
            ok = [item for item in items if not item[4]]
            errors += [(records[item[0]].image_id, item[4]) for item in items if item[4]]
            kept += [item[0] for item in ok]
            shas += [item[2] for item in ok]
            phashes += [item[3] for item in ok]
            if model is not None and ok:
                vectors.append(embed(model, torch.stack([item[1] for item in ok]).to(device)).cpu().numpy())
            bar.update(len(items))
    for image_id, reason in errors:
        log.warning("%s: cannot read %s: %s", split, image_id, reason)
    chosen = [records[i] for i in kept]
    embeddings = None
    if model is not None:
        dim = vectors[0].shape[1] if vectors else 0
        embeddings = np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32)
    return Fingerprints(
        image_ids=[r.image_id for r in chosen], images=[r.image for r in chosen], splits=[split] * len(chosen),
        labels=np.array([-1 if r.label is None else r.label for r in chosen], dtype=np.int64),
        pixel_sha256=shas, phash=np.array(phashes, dtype=np.uint64), embeddings=embeddings, errors=errors)


# --- candidate pairs -----------------------------------------------------------------------------------------
# Every pair function returns (i, j) int64 arrays with i < j, without repeats.


def _unique_pairs(i: np.ndarray, j: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    low, high = np.minimum(i, j).astype(np.int64), np.maximum(i, j).astype(np.int64)
    keys = np.unique(low[low != high] * n + high[low != high])
    return keys // max(n, 1), keys % max(n, 1)


def exact_pairs(hashes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of images with the same pixel hash: each copy paired with the first of its hash (a star, so a
    group of m copies gives m - 1 pairs, not m^2; the groups come out the same)."""
    codes = pd.factorize(pd.Series(hashes, dtype=object))[0]
    anchor = pd.Series(np.arange(len(codes))).groupby(codes).transform("min").to_numpy()
    return _unique_pairs(anchor, np.arange(len(codes)), len(codes))


def phash_pairs(phash: np.ndarray, max_hamming: int = DEFAULT_MAX_HAMMING,
                block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose perceptual hashes differ in at most ``max_hamming`` bits, by multi-index hashing.

    The 64 bits are cut into ``max_hamming + 1`` chunks; by the pigeonhole principle a close pair agrees on a
    whole chunk, so only images sharing a chunk value are compared (in blocks of ``block`` rows, bounding memory
    for large buckets such as blank images). Example: hashes ``[0b1011, 0b1001, 2**63]`` with ``max_hamming=1``
    -> ``([0], [1])``.
    """
    phash = np.asarray(phash, dtype=np.uint64)
    n = len(phash)
    chunks = max_hamming + 1
    bounds = np.linspace(0, PHASH_BITS, chunks + 1).astype(int)
    found_i, found_j = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for start, stop in zip(bounds[:-1], bounds[1:]):
        key = (phash >> np.uint64(start)) & np.uint64((1 << int(stop - start)) - 1)
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        edges = np.flatnonzero(np.diff(sorted_key)) + 1
        for members in np.split(order, edges):
            if len(members) < 2:
                continue
            for row in range(0, len(members), block):
                left = members[row:row + block]
                distance = hamming(phash[left][:, None], phash[members][None, :])
                a, b = np.nonzero(distance <= max_hamming)
                found_i.append(left[a])
                found_j.append(members[b])
    return _unique_pairs(np.concatenate(found_i), np.concatenate(found_j), n)


def _faiss():
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def nearest_neighbours(embeddings: np.ndarray, neighbours: int = DEFAULT_NEIGHBOURS, method: str = "auto",
                       min_similarity: float = -np.inf, nprobe: int = 16,
                       progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Each vector's ``neighbours`` most similar other vectors by inner product (cosine for unit vectors).

    ``embeddings``: float32 (N, D). Returns ``(indices int64 (N, m), similarities float32 (N, m))``, m =
    min(neighbours, N - 1), most similar first; -1 / -inf where fewer were found (an approximate index, or
    neighbours below ``min_similarity``, which the exact search skips early: far cheaper than ranking them).
    ``method``: ``"exact"`` (blocked matrix products; beyond the vectors, about ``_BLOCK_BYTES`` = 256 MiB for a
    block of similarities and its bookkeeping), ``"faiss"`` (an IVF-flat index: about 4·√N lists, ``nprobe`` of
    them searched per query), or ``"auto"`` (faiss above ``EXACT_SEARCH_LIMIT`` vectors when installed, else exact).
    """
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = len(x)
    m = min(neighbours, max(n - 1, 0))
    if m == 0:
        return np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32)
    if method == "auto":
        method = "faiss" if n > EXACT_SEARCH_LIMIT and _faiss() is not None else "exact"
    if method == "faiss":
        indices, sims = _faiss_search(x, m, nprobe, progress)
        below = sims < min_similarity
        return np.where(below, -1, indices), np.where(below, -np.inf, sims).astype(np.float32)
    if method != "exact":
        raise ValueError(f"unknown search method {method!r}; use auto, exact or faiss")
    # 12 bytes per similarity: the float32 block and, in the worst case, int64 partition indices
    rows = max(1, min(n, _BLOCK_BYTES // (12 * n)))
    indices = np.full((n, m), -1, np.int64)
    sims = np.full((n, m), -np.inf, np.float32)
    for start in tqdm(range(0, n, rows), desc="nearest neighbours", unit="block", disable=not progress):
        block = x[start:start + rows] @ x.T
        block[np.arange(len(block)), np.arange(start, start + len(block))] = -np.inf  # not its own neighbour
        if np.isfinite(min_similarity):
            # few pairs pass a high bar: sort only those, per row
            r, c = np.nonzero(block >= min_similarity)
            values = block[r, c]
            order = np.lexsort((c, -values, r))
            r, c, values = r[order], c[order], values[order]
            rank = np.arange(len(r)) - np.searchsorted(r, r)
            keep = rank < m
            indices[start + r[keep], rank[keep]] = c[keep]
            sims[start + r[keep], rank[keep]] = values[keep]
            continue
        top = np.argpartition(block, n - m, axis=1)[:, n - m:]
        top_sims = np.take_along_axis(block, top, axis=1)
        order = np.lexsort((top, -top_sims), axis=1)
        indices[start:start + rows] = np.take_along_axis(top, order, axis=1)
        sims[start:start + rows] = np.take_along_axis(top_sims, order, axis=1)
    return indices, sims


def _faiss_search(x: np.ndarray, m: int, nprobe: int, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    faiss = _faiss()
    if faiss is None:
        raise UserError("the faiss index needs faiss-cpu: pip install 'multilabelfy-ls[audit]' (or use exact search)")
    n, dim = x.shape
    lists = max(1, min(int(4 * math.sqrt(n)), n // 39))  # faiss wants about 39+ training points per list
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
    # k-means on 40 points per list, 10 rounds: the training costs about as much as the search, not 5 times more
    index.cp.niter = 10
    rng = np.random.default_rng(0)
    sample = x[rng.choice(n, size=min(n, 40 * lists), replace=False)]
    index.train(sample)
    index.add(x)
    index.nprobe = min(nprobe, lists)
    indices = np.empty((n, m), np.int64)
    sims = np.empty((n, m), np.float32)
    step = 65_536
    for start in tqdm(range(0, n, step), desc="nearest neighbours (faiss)", unit="block", disable=not progress):
        found_sims, found = index.search(x[start:start + step], m + 1)
        own = found == np.arange(start, start + len(found))[:, None]
        # drop each query's own entry (or, when it is missing, the last neighbour) to keep m
        drop = np.where(own.any(axis=1), own.argmax(axis=1), m)
        keep = np.ones_like(own)
        keep[np.arange(len(found)), drop] = False
        indices[start:start + step] = found[keep].reshape(len(found), m)
        sims[start:start + step] = np.where(found[keep] < 0, -np.inf, found_sims[keep]).reshape(len(found), m)
    return indices, sims


def embedding_pairs(embeddings: np.ndarray, min_cosine: float = DEFAULT_MIN_COSINE,
                    neighbours: int = DEFAULT_NEIGHBOURS, method: str = "auto",
                    progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of images whose embeddings have cosine similarity >= ``min_cosine``, among each image's
    ``neighbours`` nearest (``nearest_neighbours``; a group larger than that is still joined through chains)."""
    indices, sims = nearest_neighbours(embeddings, neighbours, method, min_similarity=min_cosine, progress=progress)
    rows, cols = np.nonzero(indices >= 0)
    return _unique_pairs(rows, indices[rows, cols], len(embeddings))


# --- pairs, groups and the tables ----------------------------------------------------------------------------


def find_duplicates(fingerprints: Fingerprints, max_hamming: int = DEFAULT_MAX_HAMMING,
                    min_cosine: float = DEFAULT_MIN_COSINE, neighbours: int = DEFAULT_NEIGHBOURS,
                    method: str = "auto", cross_only: bool = False,
                    progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Duplicate pairs and groups of ``fingerprints`` (one split, or several concatenated).

    Returns ``(pairs, groups)``. ``pairs``: one row per duplicate pair, columns ``group``, ``image_a``,
    ``image_b``, ``split_a``, ``split_b``, ``label_a``, ``label_b``, ``kind`` (``exact``: same pixels; ``near``),
    ``hamming`` (pHash bits), ``cosine`` (NaN without embeddings), ``cross_split``, ``label_conflict`` (both
    labels known and different). ``groups``: one row per image in a group, columns ``group``, ``image_id``,
    ``split``, ``label``, ``image``, ``group_size``, ``group_labels`` (the distinct known labels, space-separated),
    ``conflict`` (more than one), ``cross_split``, ``kind`` (``exact`` when all copies are pixel-identical).
    Groups are numbered from 0, largest first. ``cross_only`` keeps only pairs between different splits.

    Example (three photos, the second an exact copy of the first)::

        >>> pairs, groups = find_duplicates(fingerprints)
        >>> pairs[["image_a", "image_b", "kind"]].values.tolist()
        [['cat', 'cat_copy', 'exact']]
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(fingerprints)
    candidates = [exact_pairs(fingerprints.pixel_sha256), phash_pairs(fingerprints.phash, max_hamming)]
    if fingerprints.embeddings is not None:
        candidates.append(embedding_pairs(fingerprints.embeddings, min_cosine, neighbours, method, progress))
    i, j = _unique_pairs(np.concatenate([c[0] for c in candidates]), np.concatenate([c[1] for c in candidates]), n)
    splits = np.asarray(fingerprints.splits, dtype=object)
    if cross_only:
        keep = splits[i] != splits[j]
        i, j = i[keep], j[keep]
    shas = np.asarray(fingerprints.pixel_sha256, dtype=object)
    exact = shas[i] == shas[j]
    distance = hamming(fingerprints.phash[i], fingerprints.phash[j])
    if fingerprints.embeddings is not None:
        cosine = np.einsum("pd,pd->p", fingerprints.embeddings[i], fingerprints.embeddings[j]).astype(np.float64)
    else:
        cosine = np.full(len(i), np.nan)
    labels = fingerprints.labels
    components = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)), directed=False)[1]
    in_pair = np.zeros(n, bool)
    in_pair[i] = in_pair[j] = True
    members = np.flatnonzero(in_pair)
    # renumber the groups 0.. by size (largest first), then by first member
    sizes = np.bincount(components[members], minlength=n)
    first = np.full(n, n)
    np.minimum.at(first, components[members], members)
    roots = np.unique(components[members])
    ranked = roots[np.lexsort((first[roots], -sizes[roots]))]
    number = np.full(n, -1)
    number[ranked] = np.arange(len(ranked))
    group = number[components]

    ids = np.asarray(fingerprints.image_ids, dtype=object)
    pairs = pd.DataFrame({
        "group": group[i], "image_a": ids[i], "image_b": ids[j], "split_a": splits[i], "split_b": splits[j],
        "label_a": labels[i], "label_b": labels[j], "kind": np.where(exact, "exact", "near"),
        "hamming": distance, "cosine": cosine, "cross_split": splits[i] != splits[j],
        "label_conflict": (labels[i] >= 0) & (labels[j] >= 0) & (labels[i] != labels[j]),
    }).sort_values(["group", "image_a", "image_b"], kind="stable").reset_index(drop=True)

    groups = pd.DataFrame({
        "group": group[members], "image_id": ids[members], "split": splits[members], "label": labels[members],
        "image": np.asarray(fingerprints.images, dtype=object)[members], "sha": shas[members],
    })
    by_group = groups.groupby("group")
    known = groups[groups["label"] >= 0].groupby("group")["label"]
    label_text = known.agg(lambda s: " ".join(map(str, sorted(set(s))))).reindex(by_group.size().index, fill_value="")
    groups["group_size"] = by_group["image_id"].transform("size")
    groups["group_labels"] = groups["group"].map(label_text)
    groups["conflict"] = groups["group"].map(known.nunique()).fillna(0).astype(int) > 1
    groups["cross_split"] = by_group["split"].transform("nunique") > 1
    groups["kind"] = np.where(by_group["sha"].transform("nunique") == 1, "exact", "near")
    groups = groups.drop(columns="sha").sort_values(["group", "split", "image_id"], kind="stable")
    return pairs, groups.reset_index(drop=True)


def duplicate_summary(pairs: pd.DataFrame, groups: pd.DataFrame, fingerprints: Fingerprints) -> dict:
    """Counts for people: images, groups, images in groups, exact/near pairs, conflicting and cross-split groups,
    and the images one would drop to keep one copy per group (``removable``)."""
    per_group = groups.drop_duplicates("group")
    return {
        "images": len(fingerprints),
        "unreadable": len(fingerprints.errors),
        "splits": sorted(set(fingerprints.splits)),
        "groups": int(len(per_group)),
        "images_in_groups": int(len(groups)),
        "removable": int(len(groups) - len(per_group)),
        "exact_pairs": int((pairs["kind"] == "exact").sum()),
        "near_pairs": int((pairs["kind"] == "near").sum()),
        "exact_groups": int((per_group["kind"] == "exact").sum()),
        "conflicting_groups": int(per_group["conflict"].sum()),
        "cross_split_groups": int(per_group["cross_split"].sum()),
    }


def duplicate_notes(groups: pd.DataFrame, class_names: Sequence[str] = ()) -> dict[str, dict]:
    """Label Studio task data for images that have duplicates: ``{image_id: note}``.

    ``note`` = ``{"duplicate_of": [other image ids in the group], "duplicate_kind": "exact"|"near",
    "duplicate_labels": [class names or indices the copies carry], "duplicate_conflict": bool,
    "duplicate_note": one readable line}``; put it into a task's ``data`` so the template can show it.
    """
    notes: dict[str, dict] = {}
    for _, members in groups.groupby("group", sort=True):
        ids = members["image_id"].tolist()
        labels = sorted({int(c) for c in members["label"] if c >= 0})
        shown = [class_names[c] if c < len(class_names) else str(c) for c in labels]
        kind = members["kind"].iloc[0]
        conflict = bool(members["conflict"].iloc[0])
        for image_id in ids:
            others = [o for o in ids if o != image_id]
            line = (f"possible {kind} duplicate of {', '.join(others[:5])}" + (" ..." if len(others) > 5 else "")
                    + (f"; the copies are labelled {', '.join(shown)}" if conflict else ""))
            notes[image_id] = {"duplicate_of": others, "duplicate_kind": kind, "duplicate_labels": shown,
                               "duplicate_conflict": conflict, "duplicate_note": line}
    return notes


def read_duplicate_notes(folder: str | os.PathLike, class_names: Sequence[str] = ()) -> dict[str, str]:
    """``{image_id: duplicate_note}`` of the images in a ``multilabelfy audit duplicates`` folder's groups.csv
    (``create-project --duplicates``). Notes are keyed by image id alone, so an id found in two splits of the
    audit is a ``UserError`` rather than a note on the wrong image."""
    path = Path(folder) / "groups.csv"
    if not path.is_file():
        raise UserError(f"{folder} has no groups.csv; pass a folder written by `multilabelfy audit duplicates`")
    try:
        groups = pd.read_csv(path, dtype={"image_id": str, "split": str, "kind": str}, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as error:
        raise UserError(f"{path} is not a duplicates table ({str(error).splitlines()[0]}); re-run the audit") from None
    missing = {"group", "image_id", "split", "label", "kind", "conflict"} - set(groups.columns)
    if missing:
        raise UserError(f"{path} lacks columns {', '.join(sorted(missing))}; re-run `multilabelfy audit duplicates`")
    splits = groups.groupby("image_id")["split"].nunique()
    if (splits > 1).any():
        raise UserError(f"{path}: image id {splits[splits > 1].index[0]!r} is in two splits, so its note would be "
                        "ambiguous; audit the project's split alone (without --against) for the notes")
    return {image_id: note["duplicate_note"] for image_id, note in duplicate_notes(groups, class_names).items()}
