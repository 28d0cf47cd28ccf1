"""Local server processes (Label Studio, the ML backend) started by the tests, the demo and the benchmarks.

Each runs in its own session (so stopping it reaches its whole process group: gunicorn's workers, Label
Studio's children), logs to a file, and on Linux dies with the process that started it, so that a killed
test run or demo leaves nothing behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Callable, Mapping, Sequence

import requests

from multilabelfy.errors import UserError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def log_tail(path: str | os.PathLike, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    path = Path(path)
    if not path.exists():
        return "(no log)"
    with open(path, encoding="utf-8", errors="replace") as handle:
        return "".join(deque(handle, maxlen=lines)).rstrip()


def _die_with_parent() -> None:
    """Runs in the child before exec: on Linux the kernel sends it SIGTERM when the thread that started it
    ends, even by SIGKILL (PR_SET_PDEATHSIG = 1). Start services from the main thread for that reason."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)


class ServiceProcess:
    """One server process: start it, wait until ``is_ready()`` says it answers, stop it by process group.

    Args:
        name: how error messages call it ("Label Studio", "the ML backend").
        url: where it should answer (for error messages).
        command: the program and its arguments.
        env: its whole environment.
        log_path: its stdout and stderr go here (appended).
        cwd: its working folder.
    """

    def __init__(self, name: str, url: str, command: Sequence[str], env: Mapping[str, str],
                 log_path: str | os.PathLike, cwd: str | os.PathLike | None = None):
        self.name = name
        self.url = url
        self.command = list(command)
        self.env = dict(env)
        self.log_path = Path(log_path)
        self.cwd = cwd
        self._process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, is_ready: Callable[[], bool], timeout: float) -> None:
        """Start the process and return once ``is_ready()`` is true; stop it and raise ``UserError`` (with the
        log's tail) if it exits or does not get ready within ``timeout`` seconds. ``is_ready`` may raise
        ``requests.RequestException`` while the server is not listening yet."""
        if self._process is not None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as log:
            self._process = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.cwd, start_new_session=True, preexec_fn=_die_with_parent,
            )
        try:
            self._wait_until_ready(is_ready, timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self, is_ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise UserError(
                    f"{self.name} exited with status {self._process.returncode} while starting; "
                    f"its log {self.log_path} ends with:\n{log_tail(self.log_path)}"
                )
            try:
                if is_ready():
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise UserError(
            f"{self.name} did not answer on {self.url} within {timeout:.0f} s; "
            f"its log {self.log_path} ends with:\n{log_tail(self.log_path)}"
        )

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the process group, SIGKILL after ``timeout`` seconds; nothing if it is not running."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        # The process runs in its own session, so its group holds only what it started.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
