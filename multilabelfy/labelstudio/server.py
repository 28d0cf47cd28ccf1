"""A managed local Label Studio server for the tests and the demo.

Teams that already run Label Studio never need this module: they pass ``--url`` and ``--api-key``
(or ``LABEL_STUDIO_URL`` / ``LABEL_STUDIO_API_KEY``) to the commands. Here we start the PyPI
``label-studio`` server bound to 127.0.0.1 with SQLite inside a data dir, a preset admin user and a
legacy API token, wait until it answers, and stop it by PID.

A new data dir needs database migrations (about a minute on two cores). ``seed_dir`` keeps one
migrated data dir aside and copies it into new data dirs, so that later starts take seconds.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

from multilabelfy.errors import UserError
from multilabelfy.fileio import write_json
from multilabelfy.service import ServiceProcess, free_port, log_tail

logger = logging.getLogger(__name__)

DATABASE_FILE = "label_studio.sqlite3"
CREDENTIALS_FILE = "multilabelfy-credentials.json"
LOG_FILE = "label-studio.log"
DEFAULT_USERNAME = "admin@multilabelfy.local"


@dataclass(frozen=True)
class Credentials:
    """The admin login of a managed server and its legacy API token (40 hex characters)."""

    username: str
    password: str
    token: str

    def __repr__(self) -> str:  # keep secrets out of logs and tracebacks
        return f"Credentials(username={self.username!r}, password=***, token=***)"

    @classmethod
    def generate(cls, username: str = DEFAULT_USERNAME) -> "Credentials":
        return cls(username=username, password=secrets.token_urlsafe(12), token=secrets.token_hex(20))


def _label_studio_executable() -> str:
    beside_python = Path(sys.executable).with_name("label-studio")
    found = str(beside_python) if beside_python.exists() else shutil.which("label-studio")
    if not found:
        raise UserError(
            "the label-studio server is not installed; `pip install label-studio` or pass --url and --api-key "
            "of a running Label Studio"
        )
    return found


class LabelStudioServer:
    """One ``label-studio`` process serving ``data_dir``; use as a context manager or call start/stop.

    On Linux the server also stops when the process that started it dies (even by SIGKILL); start it from the
    main thread, since the kernel ties it to the starting thread.

    Args:
        data_dir: SQLite database, media, exports, the server log (``label-studio.log``) and the admin
            credentials (``multilabelfy-credentials.json``, readable by the owner only) live here.
        document_root: the folder local-files storages may serve images from (``/data/local-files/?d=...``).
        port: TCP port on 127.0.0.1; a free one when None.
        credentials: admin login for a new data dir; an existing data dir keeps the credentials stored in it.
        seed_dir: an already migrated data dir to copy into a new ``data_dir`` (created on first use).
        startup_timeout: seconds to wait for the server to answer.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike,
        document_root: str | os.PathLike | None = None,
        port: int | None = None,
        credentials: Credentials | None = None,
        seed_dir: str | os.PathLike | None = None,
        startup_timeout: float = 240.0,
    ):
        self.data_dir = Path(data_dir).absolute()
        self.document_root = Path(document_root).absolute() if document_root else self.data_dir / "documents"
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.seed_dir = Path(seed_dir).absolute() if seed_dir else None
        self.startup_timeout = startup_timeout
        self._requested_credentials = credentials
        self.credentials: Credentials | None = None
        self._service: ServiceProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_key(self) -> str:
        if self.credentials is None:
            raise RuntimeError("the server has not been started")
        return self.credentials.token

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    @property
    def pid(self) -> int | None:
        return self._service.pid if self._service else None

    def _environment(self, credentials: Credentials) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir),
            # The admin is created from these (kept off the command line, where `ps` would show them).
            "LABEL_STUDIO_USERNAME": credentials.username,
            "LABEL_STUDIO_PASSWORD": credentials.password,
            "LABEL_STUDIO_USER_TOKEN": credentials.token,
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            # An ML backend on 127.0.0.1 and its webhook are refused without these two.
            "LABEL_STUDIO_ML_BLOCK_LOCAL_IP": "false",
            "LABEL_STUDIO_SSRF_PROTECTION_ENABLED": "false",
            "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
            "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(self.document_root),
            "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
            "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
            "LABEL_STUDIO_SENTRY_DSN": "",
            "LABEL_STUDIO_FRONTEND_SENTRY_DSN": "",
        })
        return env

    def _load_or_create_credentials(self) -> Credentials:
        stored = self.data_dir / CREDENTIALS_FILE
        if stored.exists():
            return Credentials(**json.loads(stored.read_text(encoding="utf-8")))
        credentials = self._requested_credentials or Credentials.generate()
        write_json(stored, asdict(credentials))
        stored.chmod(0o600)
        return credentials

    def _run_init(self, data_dir: Path, credentials: Credentials) -> None:
        """Migrate the database and create the admin and its organization (legacy tokens enabled)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        env = self._environment(credentials)
        env["LABEL_STUDIO_BASE_DATA_DIR"] = str(data_dir)
        log_path = data_dir / LOG_FILE
        logger.info("initializing Label Studio in %s (database migrations take about a minute)", data_dir)
        with open(log_path, "a", encoding="utf-8") as log:
            result = subprocess.run(
                [_label_studio_executable(), "init", "--data-dir", str(data_dir), "--enable-legacy-api-token",
                 "--quiet", "--no-browser"],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=data_dir,
            )
        if result.returncode != 0 or not (data_dir / DATABASE_FILE).exists():
            raise UserError(f"`label-studio init` failed in {data_dir}; its log ends with:\n{log_tail(log_path)}")

    def _initialize(self) -> None:
        if (self.data_dir / DATABASE_FILE).exists():
            self.credentials = self._load_or_create_credentials()
            return
        if self.seed_dir is not None:
            if not (self.seed_dir / DATABASE_FILE).exists():
                self._create_seed()
            shutil.copytree(self.seed_dir, self.data_dir, dirs_exist_ok=True)
            (self.data_dir / LOG_FILE).unlink(missing_ok=True)
            self.credentials = self._load_or_create_credentials()
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.credentials = self._load_or_create_credentials()
        self._run_init(self.data_dir, self.credentials)

    def _create_seed(self) -> None:
        # Built beside the final place and renamed, so that parallel sessions never copy a half-made seed.
        building = self.seed_dir.with_name(f"{self.seed_dir.name}.building-{os.getpid()}")
        shutil.rmtree(building, ignore_errors=True)
        credentials = self._requested_credentials or Credentials.generate()
        self._run_init(building, credentials)
        write_json(building / CREDENTIALS_FILE, asdict(credentials))
        (building / CREDENTIALS_FILE).chmod(0o600)
        try:
            building.rename(self.seed_dir)
        except OSError:  # another session finished its seed first: use that one
            shutil.rmtree(building, ignore_errors=True)

    def start(self) -> "LabelStudioServer":
        """Start the server and return once it answers our token on ``self.url``."""
        if self._service is not None:
            return self
        self._initialize()
        self.document_root.mkdir(parents=True, exist_ok=True)
        command = [
            _label_studio_executable(), "start", "--no-browser", "--internal-host", self.host,
            "--port", str(self.port), "--data-dir", str(self.data_dir), "--enable-legacy-api-token",
        ]
        self._service = ServiceProcess("Label Studio", self.url, command, self._environment(self.credentials),
                                       self.log_path, cwd=self.data_dir)
        try:
            self._service.start(self._answers_our_token, self.startup_timeout)
        except BaseException:
            self._service = None
            raise
        logger.info("Label Studio is up at %s (pid %d, log %s)", self.url, self.pid, self.log_path)
        return self

    def _answers_our_token(self) -> bool:
        # Asking as our own user proves that the answer comes from this server: a busy port
        # makes label-studio silently take another one.
        response = requests.get(f"{self.url}/api/current-user/whoami",
                                headers={"Authorization": f"Token {self.credentials.token}"}, timeout=5)
        return response.status_code == 200

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server we started (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
        service, self._service = self._service, None
        if service is not None:
            service.stop(timeout)

    def __enter__(self) -> "LabelStudioServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
