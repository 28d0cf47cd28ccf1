"""Local server processes: ready when the probe says so, clear errors with the log, stopped as a group."""

import os
import sys

import pytest
import requests

from multilabelfy.errors import UserError
from multilabelfy.service import ServiceProcess, free_port


def _http_server(tmp_path, port):
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(tmp_path)]
    return ServiceProcess("the test server", f"http://127.0.0.1:{port}", command, os.environ, tmp_path / "log.txt")


def test_starts_until_ready_then_stop_ends_the_process(tmp_path):
    port = free_port()
    (tmp_path / "hello.txt").write_text("hi")
    service = _http_server(tmp_path, port)
    service.start(lambda: requests.get(f"http://127.0.0.1:{port}/hello.txt", timeout=2).ok, timeout=30)
    pid = service.pid
    assert requests.get(f"http://127.0.0.1:{port}/hello.txt", timeout=2).text == "hi"
    service.stop()
    assert service.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone, and reaped
    service.stop()  # stopping twice is harmless


def test_a_process_that_exits_while_starting_names_its_log(tmp_path):
    command = [sys.executable, "-c", "import sys; print('port already taken', flush=True); sys.exit(3)"]
    service = ServiceProcess("the test server", "http://127.0.0.1:1", command, os.environ, tmp_path / "log.txt")
    with pytest.raises(UserError) as error:
        service.start(lambda: False, timeout=30)
    message = str(error.value)
    assert message.startswith("the test server exited with status 3 while starting")
    assert str(tmp_path / "log.txt") in message and message.endswith("port already taken")
    assert service.pid is None


def test_a_server_that_never_gets_ready_is_stopped(tmp_path):
    port = free_port()
    service = _http_server(tmp_path, port)
    with pytest.raises(UserError, match=rf"the test server did not answer on http://127.0.0.1:{port} within 2 s"):
        service.start(lambda: False, timeout=2)
    assert service.pid is None
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=2)
