"""Starting and stopping the backend as a local gunicorn process (the tests, ``make demo``, the load test).

In production the Dockerfile runs gunicorn itself; this module only wraps ``python -m
multilabelfy.ml_backend._wsgi`` with a free loopback port, a log file and a wait for /health.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping

import requests

from multilabelfy.service import ServiceProcess, free_port


class BackendServer:
    """One backend process on 127.0.0.1; use as a context manager or call start/stop.

    Args:
        env: settings as environment variables (see ml_backend/README.md), on top of this process's environment.
        log_path: where gunicorn and the workers write.
        port: a free one when None.
        startup_timeout: seconds to wait until /health answers (every worker loads the weights first).
    """

    def __init__(self, env: Mapping[str, str], log_path: str | os.PathLike, port: int | None = None,
                 startup_timeout: float = 180.0):
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.env = {**os.environ, **env, "HOST": self.host, "PORT": str(self.port)}
        self.log_path = Path(log_path)
        self.startup_timeout = startup_timeout
        command = [sys.executable, "-m", "multilabelfy.ml_backend._wsgi"]
        self._service = ServiceProcess("the ML backend", self.url, command, self.env, self.log_path)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The gunicorn master's process id (its workers are its children)."""
        return self._service.pid

    def start(self) -> "BackendServer":
        self._service.start(self._healthy, self.startup_timeout)
        return self

    def _healthy(self) -> bool:
        auth = None
        if self.env.get("BASIC_AUTH_USER") and self.env.get("BASIC_AUTH_PASS"):
            auth = (self.env["BASIC_AUTH_USER"], self.env["BASIC_AUTH_PASS"])
        return requests.get(f"{self.url}/health", auth=auth, timeout=5).status_code == 200

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to gunicorn's process group (master and workers), SIGKILL after ``timeout`` seconds."""
        self._service.stop(timeout)

    def __enter__(self) -> "BackendServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
