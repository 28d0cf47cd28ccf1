"""Connecting a running backend to a Label Studio project, idempotently (``multilabelfy connect-backend``).

Running it twice leaves one backend entry for the URL and no webhook to ``<url>/webhook``: Label Studio adds
that webhook with every new backend entry and would send the backend every annotation event, which this
backend does not use. That webhook is the only thing our scripts ever delete in Label Studio.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from multilabelfy.labelstudio.client import LabelStudioClient

logger = logging.getLogger(__name__)

DEFAULT_TITLE = "multilabelfy"


@dataclass(frozen=True)
class Connection:
    backend: dict  # Label Studio's ML backend entry (``id``, ``url``, ``state``, ...)
    created: bool  # False when an entry for the URL already existed
    webhooks_removed: int
    other_backends: list[dict]  # entries of the project for other URLs, left alone


def connect_backend(
    client: LabelStudioClient,
    project_id: int,
    url: str,
    title: str = DEFAULT_TITLE,
    basic_auth: tuple[str, str] | None = None,
    prelabel: bool = True,
) -> Connection:
    """Make ``url`` the project's ML backend; re-running changes nothing.

    Args:
        basic_auth: the backend's BASIC_AUTH_USER/PASS, stored in Label Studio with the entry.
        prelabel: also set the project to pre-label tasks with this backend when an annotator opens them
            (``show_collab_predictions`` and ``model_version`` = the entry's title, as the UI's
            "Use predictions to pre-label tasks" does), unless the project already pre-labels with another
            model version (a refinement project's own predictions), which is left alone.
    """
    url = url.rstrip("/")
    project = client.get_project(project_id)  # a wrong id fails here, before anything changes
    entries = client.list_ml_backends(project_id)
    ours = [entry for entry in entries if (entry.get("url") or "").rstrip("/") == url]
    others = [entry for entry in entries if entry not in ours]
    auth = {"auth_method": "NONE"} if basic_auth is None else {
        "auth_method": "BASIC_AUTH", "basic_auth_user": basic_auth[0], "basic_auth_pass": basic_auth[1],
    }
    if ours:
        if len(ours) > 1:
            logger.warning("project %s has %d backend entries for %s (ids %s); keeping id %s, deleting none",
                           project_id, len(ours), url, [e["id"] for e in ours], ours[0]["id"])
        # Updating makes Label Studio check the backend again (/health, /setup) and keeps title and auth current.
        # Label Studio 1.23 answers 500 to an update without the project: its check calls /setup for it.
        backend = client.update_ml_backend(ours[0]["id"], project=project_id, url=url, title=title,
                                           is_interactive=True, **auth)
        created = False
    else:
        backend = client.create_ml_backend(project_id, url, title, is_interactive=True, **auth)
        created = True
    if others:
        logger.warning("project %s also has ML backends %s; Label Studio asks the first one it finds for predictions",
                       project_id, [(e["id"], e.get("url")) for e in others])
    removed = _remove_backend_webhooks(client, project_id, url)
    current = project.get("model_version") or ""
    if prelabel and current not in ("", title):
        # e.g. a refinement project, which pre-labels with its own predictions: switching would hide them.
        logger.warning("project %s pre-labels with model version %r; left as it is (the backend still answers "
                       "Retrieve Predictions)", project_id, current)
    elif prelabel and (current != title or not project.get("show_collab_predictions")):
        client.update_project(project_id, show_collab_predictions=True, model_version=title)
    return Connection(backend=backend, created=created, webhooks_removed=removed, other_backends=others)


def _remove_backend_webhooks(client: LabelStudioClient, project_id: int, url: str) -> int:
    """Delete the project's webhooks to exactly ``<url>/webhook`` (the ones Label Studio adds for the backend)."""
    target = f"{url}/webhook"
    stray = [hook for hook in client.list_webhooks(project_id)
             if (hook.get("url") or "").rstrip("/") == target and hook.get("project") == project_id]
    for hook in stray:
        client.delete_webhook(hook["id"])
        logger.info("removed webhook %s to %s (added by Label Studio with the backend; not needed)", hook["id"], target)
    return len(stray)


def retrieve_predictions(client: LabelStudioClient, project_id: int, chunk_size: int = 100) -> int:
    """Have Label Studio ask the backend for predictions of every task of the project; returns the task count.

    Label Studio sends all selected tasks in one /predict request and waits at most 100 s for it, so the tasks
    go in chunks. Tasks that already hold the backend's current version are skipped by Label Studio itself.
    """
    from tqdm import tqdm

    ids = [task["id"] for task in client.iter_tasks(project_id, with_annotations=False)]
    for start in tqdm(range(0, len(ids), chunk_size), desc=f"predictions for project {project_id}", unit="chunk",
                      disable=len(ids) <= chunk_size):
        client.retrieve_predictions(project_id, ids[start:start + chunk_size])
    return len(ids)
