"""The one place where the package talks to Label Studio (over ``label_studio_sdk.LabelStudio``, SDK 2.x).

Retries with backoff, chunked imports with progress, pagination, snapshot exports saved atomically and
one-line errors for a wrong URL, API key or project all live here, once. Every method returns plain
dicts (the JSON Label Studio sends), never SDK models, so callers and tests need not know the SDK.

Retry policy (``_call``): reads and other idempotent calls are retried on connection errors, timeouts,
429 and 5xx; calls that create things are retried only when the request cannot have reached the
application (connection refused, 502/503), so that a retry never creates anything twice.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import httpx

from multilabelfy.errors import UserError
from multilabelfy.fileio import atomic_write

logger = logging.getLogger(__name__)
# The SDK's HTTP library logs every request at INFO, which drowns our progress output; warnings still show.
logging.getLogger("httpx").setLevel(logging.WARNING)

URL_ENV = "LABEL_STUDIO_URL"
API_KEY_ENV = "LABEL_STUDIO_API_KEY"

T = TypeVar("T")

_RETRY_ALWAYS = {429, 500, 502, 503, 504}
_RETRY_UNSENT = {502, 503}  # answered by a proxy or a server that is starting: the request did no work


def _plain(value: Any) -> Any:
    """SDK pydantic models (and lists of them) as plain JSON-like Python values."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if hasattr(value, "dict"):
        return value.dict()
    return value


def _body_text(body: Any, limit: int = 300) -> str:
    text = " ".join(str(body).split())
    return text if len(text) <= limit else text[:limit] + "..."


class LabelStudioClient:
    """A connection to one Label Studio as one user.

    Args:
        url: e.g. ``http://localhost:8080`` (without ``/api``).
        api_key: a legacy token or a personal access token (Account & Settings in the UI).
        timeout: seconds per HTTP request.
        retries: extra attempts after a transient failure (backoff 0.5 s, 1 s, 2 s, ...).

    Connecting checks the URL and the key at once and raises a one-line ``UserError`` when either is wrong.
    """

    def __init__(self, url: str, api_key: str, timeout: float = 120.0, retries: int = 4):
        from label_studio_sdk import LabelStudio

        if not url:
            raise UserError(f"no Label Studio URL: pass --url or set {URL_ENV}")
        if not api_key:
            raise UserError(f"no Label Studio API key: pass --api-key or set {API_KEY_ENV} "
                            "(Account & Settings > Access Token in the Label Studio UI)")
        self.url = url.rstrip("/")
        self.retries = retries
        # The SDK's own retries are off: ours, below, know which calls are safe to repeat.
        self._sdk = LabelStudio(base_url=self.url, api_key=api_key, timeout=timeout, max_retries=0)
        self.user = self.current_user()

    @classmethod
    def from_env(cls, url: str | None = None, api_key: str | None = None, **kwargs: Any) -> "LabelStudioClient":
        """Connect with explicit values, falling back to ``LABEL_STUDIO_URL`` / ``LABEL_STUDIO_API_KEY``."""
        return cls(url or os.environ.get(URL_ENV, ""), api_key or os.environ.get(API_KEY_ENV, ""), **kwargs)

    def __repr__(self) -> str:  # never the key
        return f"LabelStudioClient(url={self.url!r})"

    # --- the single call path: retries and error messages ---------------------------------------------------

    def _call(self, what: str, function: Callable[..., T], *args: Any, idempotent: bool = True, **kwargs: Any) -> T:
        """Run one SDK call; retry transient failures; turn failures into one-line ``UserError``s.

        ``what`` names the operation and its target for the error message, e.g. ``"import tasks into project 3"``.
        """
        from label_studio_sdk.core.api_error import ApiError

        for attempt in range(self.retries + 1):
            try:
                return function(*args, **kwargs)
            except httpx.TransportError as error:
                unsent = isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout))
                if attempt < self.retries and (idempotent or unsent):
                    self._wait(attempt, what, error)
                    continue
                raise UserError(
                    f"cannot reach Label Studio at {self.url} to {what} ({type(error).__name__}); check --url or "
                    f"{URL_ENV} and that the server is running"
                ) from None
            except ApiError as error:
                status = error.status_code
                retry_on = _RETRY_ALWAYS if idempotent else _RETRY_UNSENT
                if status in retry_on and attempt < self.retries:
                    self._wait(attempt, what, f"HTTP {status}")
                    continue
                raise self._user_error(what, status, error.body) from None
        raise AssertionError("unreachable")

    def _pages(self, what: str, list_function: Callable[..., Any], page_size: int = 100,
               **kwargs: Any) -> Iterator[dict]:
        """Items of a paginated list endpoint, one retried request per page.

        The SDK's pager asks for one page past the end (a 404); the totals in each response tell us where to stop.
        """
        page, seen = 1, 0
        while True:
            pager = self._call(f"{what} (page {page})", list_function, page=page, page_size=page_size, **kwargs)
            items = _plain(pager.items or [])
            yield from items
            seen += len(items)
            total = getattr(pager.response, "total", None)
            total = getattr(pager.response, "count", None) if total is None else total
            if len(items) < page_size or (total is not None and seen >= total):
                return
            page += 1

    def _wait(self, attempt: int, what: str, reason: object) -> None:
        delay = 0.5 * 2 ** attempt
        logger.warning("Label Studio: %s failed (%s); retrying in %.1f s", what, reason, delay)
        time.sleep(delay)

    def _user_error(self, what: str, status: int | None, body: Any) -> UserError:
        if status == 401:
            return UserError(
                f"Label Studio at {self.url} refused the API key (401) while trying to {what}; pass the token from "
                f"Account & Settings as --api-key or {API_KEY_ENV}"
            )
        if status == 403:
            return UserError(f"Label Studio at {self.url} does not allow this user to {what} (403)")
        if status == 404:
            return UserError(f"Label Studio at {self.url}: not found while trying to {what} (404); check the id")
        return UserError(f"Label Studio at {self.url} could not {what}: HTTP {status}: {_body_text(body)}")

    # --- users --------------------------------------------------------------------------------------------------

    def current_user(self) -> dict:
        """The user the API key belongs to (``id``, ``email``, ...); the cheap check that URL and key work."""
        return _plain(self._call("read the current user", self._sdk.users.whoami))

    def list_users(self) -> list[dict]:
        return _plain(self._call("list users", self._sdk.users.list))

    def ensure_user(self, email: str, password: str | None = None, first_name: str = "", last_name: str = "") -> dict:
        """The user with ``email``, created (in our organization) when missing; never duplicated."""
        for user in self.list_users():
            if user.get("email") == email:
                return user
        options = {"password": password} if password else {}
        created = self._call(
            f"create user {email}", self._sdk.users.create, idempotent=False, username=email.split("@")[0],
            email=email, first_name=first_name, last_name=last_name, **options,
        )
        return _plain(created)

    # --- projects -----------------------------------------------------------------------------------------------

    def project_url(self, project_id: int) -> str:
        """Where a person opens the project in a browser."""
        return f"{self.url}/projects/{project_id}/data"

    def get_project(self, project_id: int) -> dict:
        return _plain(self._call(f"read project {project_id}", self._sdk.projects.get, project_id))

    def find_project(self, title: str) -> dict | None:
        """The project whose title is exactly ``title`` (the API filters by "contains"), or None.

        Titles identify our projects (that is what makes re-runs idempotent): two projects with the same title
        are an error the user must resolve.
        """
        listed = self._pages(f"list projects titled {title!r}", self._sdk.projects.list, title=title)
        matches = [project for project in listed if project.get("title") == title]
        if len(matches) > 1:
            ids = ", ".join(str(p["id"]) for p in matches)
            raise UserError(f"Label Studio at {self.url} has {len(matches)} projects titled {title!r} (ids {ids}); "
                            "rename all but one, or choose another --title")
        return matches[0] if matches else None

    def create_project(self, title: str, label_config: str, description: str = "", **settings: Any) -> dict:
        """Create a project; ``settings`` are further project fields (``show_skip_button``, ``sampling``, ...)."""
        created = self._call(f"create project {title!r}", self._sdk.projects.create, idempotent=False,
                             title=title, label_config=label_config, description=description, **settings)
        return _plain(created)

    def update_project(self, project_id: int, **fields: Any) -> dict:
        return _plain(self._call(f"update project {project_id}", self._sdk.projects.update, project_id, **fields))

    def set_overlap(self, project_id: int, annotators_per_task: int) -> dict:
        """Every task gets ``annotators_per_task`` annotations from distinct annotators (100% overlap cohort)."""
        if annotators_per_task < 1:
            raise UserError(f"annotators per image must be at least 1, not {annotators_per_task}")
        return self.update_project(project_id, maximum_annotations=annotators_per_task,
                                   overlap_cohort_percentage=100)

    # --- storages -----------------------------------------------------------------------------------------------

    def list_local_storages(self, project_id: int) -> list[dict]:
        """The project's local-files import storages (``id``, ``path``, ``title``, ...)."""
        return _plain(self._call(f"list local storages of project {project_id}",
                                 self._sdk.import_storage.local.list, project=project_id))

    def ensure_local_storage(self, project_id: int, path: str | os.PathLike, title: str = "images") -> dict:
        """A local-files import storage of the project over ``path`` (a folder under the server's document root).

        It makes ``/data/local-files/?d=<path relative to the document root>`` URLs servable for the project's
        tasks. It is never synced: tasks are imported by us with all their data.
        """
        path = str(Path(path).absolute())
        for storage in self.list_local_storages(project_id):
            if storage.get("path") == path:
                return storage
        created = self._call(
            f"add local storage {path} to project {project_id} (is it under LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT, "
            "with LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true?)",
            self._sdk.import_storage.local.create, idempotent=False, project=project_id, path=path, title=title,
            use_blob_urls=True,
        )
        return _plain(created)

    # --- tasks --------------------------------------------------------------------------------------------------

    def import_tasks(self, project_id: int, tasks: Iterable[dict], chunk_size: int = 500,
                     progress: bool = True) -> list[int]:
        """Import tasks (``{"data": {...}, "predictions": [...]}`` each) in chunks; returns the new task ids in order.

        Deduplication is the caller's job (see ``iter_tasks``): Label Studio imports whatever it is given.
        """
        from tqdm import tqdm

        tasks = list(tasks)
        ids: list[int] = []
        with tqdm(total=len(tasks), desc=f"import into project {project_id}", unit="task",
                  disable=not progress or not tasks) as bar:
            for start in range(0, len(tasks), chunk_size):
                chunk = tasks[start:start + chunk_size]
                response = self._call(
                    f"import tasks {start}..{start + len(chunk) - 1} into project {project_id}",
                    self._sdk.projects.import_tasks, project_id, request=chunk, return_task_ids=True,
                    idempotent=False,
                )
                ids += list(response.task_ids or [])
                bar.update(len(chunk))
        return ids

    def iter_tasks(self, project_id: int, page_size: int = 500, with_annotations: bool = True) -> Iterator[dict]:
        """Every task of the project, page by page (``id``, ``data``, and with ``annotations``/``predictions``)."""
        return self._pages(f"list tasks of project {project_id}", self._sdk.tasks.list, page_size=page_size,
                           project=project_id, fields="all" if with_annotations else "task_only")

    def get_task(self, task_id: int) -> dict:
        return _plain(self._call(f"read task {task_id}", self._sdk.tasks.get, str(task_id)))

    def update_task_data(self, task_id: int, data: dict) -> dict:
        """Replace the task's ``data`` (the whole dict)."""
        return _plain(self._call(f"update task {task_id}", self._sdk.tasks.update, str(task_id), data=data))

    # --- annotations and predictions ----------------------------------------------------------------------------

    def create_annotation(self, task_id: int, result: list[dict], completed_by: int | None = None,
                          **fields: Any) -> dict:
        """Add an annotation (``result`` items as in an export) to a task, e.g. ``was_cancelled=True`` for a skip."""
        if completed_by is not None:
            fields["completed_by"] = completed_by
        created = self._call(f"annotate task {task_id}", self._sdk.annotations.create, task_id, result=result,
                             idempotent=False, **fields)
        return _plain(created)

    def create_prediction(self, task_id: int, result: list[dict], model_version: str,
                          score: float | None = None) -> dict:
        fields = {"score": score} if score is not None else {}
        created = self._call(f"add a prediction to task {task_id}", self._sdk.predictions.create, task=task_id,
                             result=result, model_version=model_version, idempotent=False, **fields)
        return _plain(created)

    def create_draft(self, task_id: int, result: list[dict]) -> dict:
        """Save a draft (work not yet submitted) as this client's user, as the UI does while someone annotates.

        The SDK has no call for drafts; its HTTP client posts to ``/api/tasks/<id>/drafts``.
        """
        from label_studio_sdk.core.api_error import ApiError

        def post() -> dict:
            response = self._sdk._client_wrapper.httpx_client.request(
                f"api/tasks/{task_id}/drafts", method="POST", json={"result": result, "lead_time": 1.0})
            if response.status_code >= 300:
                raise ApiError(status_code=response.status_code, body=response.text[:300])
            return response.json()

        return self._call(f"save a draft of task {task_id}", post, idempotent=False)

    # --- exports ------------------------------------------------------------------------------------------------

    def export_snapshot(self, project_id: int, path: str | os.PathLike, title: str = "multilabelfy snapshot",
                        poll_seconds: float = 1.0, timeout: float = 1800.0) -> Path:
        """Make a server-side JSON snapshot of the project and save it to ``path`` atomically; returns ``path``.

        The file is Label Studio's JSON export: a list of tasks, each with ``annotations`` (``completed_by`` as
        a user id, ``was_cancelled`` for skips), whole ``predictions`` and ``drafts``.
        """
        path = Path(path)
        export = self._call(f"start an export of project {project_id}", self._sdk.projects.exports.create,
                            project_id, title=title, idempotent=False,
                            # Whole predictions and drafts, not only their ids (the server's default).
                            serialization_options={"predictions": {"only_id": False}, "drafts": {"only_id": False}})
        deadline = time.monotonic() + timeout
        while export.status != "completed":
            if export.status == "failed":
                raise UserError(f"Label Studio at {self.url} failed to export project {project_id} "
                                f"(export {export.id}); see the server log")
            if time.monotonic() > deadline:
                raise UserError(f"export {export.id} of project {project_id} did not finish within {timeout:.0f} s")
            time.sleep(poll_seconds)
            export = self._call(f"check export {export.id} of project {project_id}",
                                self._sdk.projects.exports.get, project_id, export.id)
        def download() -> None:  # the stream is consumed inside the retried call
            with atomic_write(path, "wb") as handle:
                for chunk in self._sdk.projects.exports.download(project_id, export.id, export_type="JSON"):
                    handle.write(chunk)

        self._call(f"download export {export.id} of project {project_id}", download)
        return path

    # --- files, ML backends and webhooks (the ML backend and connect-backend) -----------------------------------

    def download(self, path: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        """A file the server serves to logged-in users (``/data/upload/...``, ``/data/local-files/?d=...``).

        ``path`` is relative to the server (a full URL on it works too). The SDK has no call for raw files; its
        HTTP client is used so that the key's kind (legacy token or personal access token) is handled the same way.
        """
        from label_studio_sdk.core.api_error import ApiError

        url = path if path.startswith(("http://", "https://")) else self.url + "/" + path.lstrip("/")
        wrapper = self._sdk._client_wrapper

        def fetch() -> bytes:
            with wrapper.httpx_client.httpx_client.stream("GET", url, headers=wrapper.get_headers()) as response:
                if response.status_code != 200:
                    raise ApiError(status_code=response.status_code, body=response.read()[:300])
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > max_bytes:
                        raise UserError(f"{path} on Label Studio is larger than {max_bytes >> 20} MiB")
                return bytes(body)

        return self._call(f"download {path}", fetch)

    def list_predictions(self, task_id: int) -> list[dict]:
        """The task's predictions, whole (``result``, ``score``, ``model_version``, ...)."""
        return _plain(self._call(f"list predictions of task {task_id}", self._sdk.predictions.list, task=task_id))

    def list_ml_backends(self, project_id: int) -> list[dict]:
        return _plain(self._call(f"list ML backends of project {project_id}", self._sdk.ml.list, project=project_id))

    def create_ml_backend(self, project_id: int, url: str, title: str, **fields: Any) -> dict:
        """Connect an ML backend (the server calls its /health and /setup first); ``fields`` as the API takes them
        (``is_interactive``, ``auth_method="BASIC_AUTH"``, ``basic_auth_user``, ``basic_auth_pass``, ...).

        Label Studio also creates a webhook to ``<url>/webhook`` for all events (see ``list_webhooks``).
        """
        created = self._call(f"connect ML backend {url} to project {project_id}", self._sdk.ml.create,
                             idempotent=False, project=project_id, url=url, title=title, **fields)
        return _plain(created)

    def update_ml_backend(self, backend_id: int, **fields: Any) -> dict:
        return _plain(self._call(f"update ML backend {backend_id}", self._sdk.ml.update, backend_id, **fields))

    def list_webhooks(self, project_id: int) -> list[dict]:
        return _plain(self._call(f"list webhooks of project {project_id}", self._sdk.webhooks.list,
                                 project=str(project_id)))

    def delete_webhook(self, webhook_id: int) -> None:
        """Only for the webhook Label Studio itself adds with an ML backend; nothing else of ours deletes."""
        self._call(f"delete webhook {webhook_id}", self._sdk.webhooks.delete, webhook_id)

    def retrieve_predictions(self, project_id: int, task_ids: Iterable[int] | None = None) -> None:
        """Ask the project's ML backend for predictions of ``task_ids`` (all tasks when None), as the Data
        Manager's "Retrieve Predictions" action does; tasks that hold the backend's current version are skipped."""
        ids = None if task_ids is None else [int(task_id) for task_id in task_ids]
        selected = {"all": True, "excluded": []} if ids is None else {"all": False, "included": ids}
        self._call(f"retrieve predictions for project {project_id}", self._sdk.actions.create,
                   id="retrieve_tasks_predictions", project=project_id, selected_items=selected)
