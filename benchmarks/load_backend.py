"""Load test of the ML backend: N concurrent /predict clients for a fixed number of requests, on loopback only.

Run by hand (not a test):

    .venv/bin/python benchmarks/load_backend.py [--clients 4] [--requests 200] [--tasks-per-request 1]
                                                [--workers 2] [--threads 4] [--json out.json]

Starts the backend with gunicorn on 127.0.0.1 (offline EfficientNet-Lite0 weights, CPU unless --device), over a
document root of skimage photos, sends /setup once, then has ``--clients`` threads send ``--requests`` /predict
requests in all. Each task carries its 20 options but no stored probabilities, so every task goes through image
reading and the model (the backend's costly path). Reports requests/s, tasks/s, p50/p99 latency, errors (any
non-200 answer, wrong result count or per-task error; must be 0) and the peak resident memory (VmHWM) of the
gunicorn master and of each worker. ``--url`` load-tests a backend already running on loopback instead.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import requests

PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "camera", "cat")


def write_photos(root: Path) -> list[str]:
    """skimage photos under ``root``; returns their local-files URLs."""
    import skimage.data
    from PIL import Image

    urls = []
    for name in PHOTOS:
        Image.fromarray(getattr(skimage.data, name)()).save(root / f"{name}.png")
        urls.append(f"/data/local-files/?d={name}.png")
    return urls


def make_tasks(urls: list[str], count: int, first_id: int) -> list[dict]:
    from multilabelfy.annotation.tasks import build_task_data
    from multilabelfy.catalogue import load_catalogue

    catalogue = load_catalogue()
    return [
        {"id": first_id + k, "data": build_task_data(urls[(first_id + k) % len(urls)], f"img{first_id + k}", None,
                                                     list(range(20)), catalogue)}
        for k in range(count)
    ]


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_load(url: str, tasks_per_request: int, requests_total: int, clients: int, urls: list[str]) -> dict:
    label_config = Path(__file__).parents[1].joinpath("project_templates", "annotation.xml").read_text()
    setup = requests.post(f"{url}/setup", json={"project": "1.1", "schema": label_config}, timeout=30)
    setup.raise_for_status()
    version = setup.json()["model_version"]
    bodies = [{"tasks": make_tasks(urls, tasks_per_request, k * tasks_per_request), "project": "1.1",
               "label_config": label_config} for k in range(requests_total)]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    session = threading.local()

    def one(body: dict) -> None:
        http = getattr(session, "http", None) or requests.Session()
        session.http = http
        started = time.perf_counter()
        try:
            response = http.post(f"{url}/predict", json=body, timeout=120)
            elapsed = time.perf_counter() - started
            problem = None
            if response.status_code != 200:
                problem = f"HTTP {response.status_code}"
            else:
                results = response.json()["results"]
                if len(results) != len(body["tasks"]):
                    problem = f"{len(results)} results for {len(body['tasks'])} tasks"
                elif any("error" in r or r.get("model_version") != version for r in results):
                    problem = f"task error: {results}"
        except requests.RequestException as error:
            elapsed, problem = time.perf_counter() - started, type(error).__name__
        with lock:
            latencies.append(elapsed)
            if problem:
                errors.append(problem)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, bodies))
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": requests_total, "clients": clients, "tasks_per_request": tasks_per_request,
        "seconds": round(wall, 2), "requests_per_s": round(requests_total / wall, 2),
        "tasks_per_s": round(requests_total * tasks_per_request / wall, 2),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        "errors": len(errors), "first_errors": errors[:3],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--tasks-per-request", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--url", default=None, help="a backend already running on 127.0.0.1 (its images must be ours)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if not (1 <= args.clients <= 64 and 1 <= args.requests <= 100_000 and 1 <= args.tasks_per_request <= 1000):
        parser.error("keep it bounded: 1..64 clients, 1..100000 requests, 1..1000 tasks per request")

    from multilabelfy.ml_backend.serve import BackendServer
    from multilabelfy.models import OFFLINE_LITE0

    with tempfile.TemporaryDirectory(prefix="load_backend_") as tmp:
        root = Path(tmp)
        urls = write_photos(root)
        if args.url:
            if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
                parser.error("--url must be a loopback address: this load test is not for other people's servers")
            report = run_load(args.url.rstrip("/"), args.tasks_per_request, args.requests, args.clients, urls)
        else:
            env = {"MODEL_WEIGHTS": OFFLINE_LITE0, "DEVICE": args.device, "BATCH_SIZE": str(args.batch_size),
                   "WORKERS": str(args.workers), "THREADS": str(args.threads), "LOCAL_FILES_DOCUMENT_ROOT": tmp,
                   "MODEL_DIR": tmp, "LOG_LEVEL": "WARNING"}
            with BackendServer(env, root / "backend.log") as server:
                started = time.perf_counter()
                run_load(server.url, 1, 2 * args.workers, args.workers, urls)  # warm-up: every worker's first call
                warmup = time.perf_counter() - started
                report = run_load(server.url, args.tasks_per_request, args.requests, args.clients, urls)
                workers = children(server.pid)
                report.update({
                    "workers": args.workers, "threads": args.threads, "warmup_s": round(warmup, 2),
                    "master_peak_rss_mib": round(peak_rss_mib(server.pid), 1),
                    "worker_peak_rss_mib": [round(peak_rss_mib(pid), 1) for pid in workers],
                })
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
