"""Near-duplicate search at scale, on synthetic data (run by hand; not a test).

For each size N: N random unit vectors (``--dim``, default 256: a PCA-reduced embedding; efficientnet_lite0's
1280-d features at 1M images would take 5 GB) of which 1% are planted near copies of others (cosine about 0.98),
and N random 64-bit perceptual hashes of which 1% are planted copies with 0-3 bits flipped. Each search runs in
its own process, so its peak memory (max RSS of the process, including the data) is its own.

    .venv/bin/python benchmarks/bench_duplicates.py --sizes 100000 1000000

Prints one line per (method, N): wall and CPU seconds of the search (CPU seconds show the work on a shared
machine), peak RSS, pairs found, recall of the planted pairs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import time

import numpy as np


def _vectors(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, set[tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    copies = n // 100
    sources = rng.choice(n - copies, copies, replace=False)
    x[n - copies:] = x[sources] + 0.15 * rng.standard_normal((copies, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, {(int(s), n - copies + k) for k, s in enumerate(sources)}


def _hashes(n: int, seed: int = 0) -> tuple[np.ndarray, set[tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**63, n, dtype=np.uint64) ^ (rng.integers(0, 2, n, dtype=np.uint64) << np.uint64(63))
    copies = n // 100
    sources = rng.choice(n - copies, copies, replace=False)
    flips = np.zeros(copies, np.uint64)
    for _ in range(3):  # up to 3 random bits flipped (a bit may be drawn twice: 0-3 bits)
        flips ^= (rng.integers(0, 2, copies, dtype=np.uint64) << rng.integers(0, 64, copies).astype(np.uint64))
    hashes[n - copies:] = hashes[sources] ^ flips
    return hashes, {(int(s), n - copies + k) for k, s in enumerate(sources)}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _run(method: str, n: int, dim: int, queue) -> None:
    from multilabelfy.audit import duplicates as dup

    if method == "phash":
        data, planted = _hashes(n)
        started, cpu = time.perf_counter(), _cpu_seconds()
        i, j = dup.phash_pairs(data, max_hamming=4)
    else:
        data, planted = _vectors(n, dim)
        started, cpu = time.perf_counter(), _cpu_seconds()
        i, j = dup.embedding_pairs(data, min_cosine=0.9, neighbours=5, method=method)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    found = set(zip(i.tolist(), j.tolist()))
    queue.put({"method": method, "n": n, "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
               "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
               "pairs": len(found), "recall": round(len(found & planted) / len(planted), 4)})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--methods", nargs="+", default=["phash", "faiss", "exact"],
                        choices=["phash", "faiss", "exact"])
    parser.add_argument("--exact-max", type=int, default=200_000,
                        help="skip the exact search above this size (it grows as N^2)")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    for n in args.sizes:
        for method in args.methods:
            if method == "exact" and n > args.exact_max:
                print(json.dumps({"method": method, "n": n, "skipped": f"N > --exact-max {args.exact_max}"}))
                continue
            queue = context.Queue()
            process = context.Process(target=_run, args=(method, n, args.dim, queue))
            process.start()
            result = queue.get()
            process.join()
            print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
