"""Starting and stopping the backend as a local gunicorn process (the tests, ``make demo``, the load test).

In production the Dockerfile runs gunicorn itself; this module only wraps ``python -m
multilabelfy.ml_backend._wsgi`` with a free loopback port, a log file and a wait for /health.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping

import requests

from multilabelfy.errors import UserError
from multilabelfy.labelstudio.server import _tail, free_port


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
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The gunicorn master's process id (its workers are its children)."""
        return self._process.pid if self._process else None

    def start(self) -> "BackendServer":
        if self._process is not None:
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "multilabelfy.ml_backend._wsgi"], env=self.env, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        auth = None
        if self.env.get("BASIC_AUTH_USER") and self.env.get("BASIC_AUTH_PASS"):
            auth = (self.env["BASIC_AUTH_USER"], self.env["BASIC_AUTH_PASS"])
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise UserError(f"the ML backend exited with status {self._process.returncode} while starting; its "
                                f"log {self.log_path} ends with:\n{_tail(self.log_path)}")
            try:
                if requests.get(f"{self.url}/health", auth=auth, timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise UserError(f"the ML backend did not answer on {self.url} within {self.startup_timeout:.0f} s; its log "
                        f"{self.log_path} ends with:\n{_tail(self.log_path)}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to gunicorn's process group (master and workers), SIGKILL after ``timeout`` seconds."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> "BackendServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
