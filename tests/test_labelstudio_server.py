"""The managed local Label Studio: start, answer with our token, serve local files, stop by PID."""

import os

import pytest
import requests

from multilabelfy.errors import UserError
from multilabelfy.labelstudio.server import Credentials, LabelStudioServer
from multilabelfy.service import free_port

pytestmark = pytest.mark.label_studio


def test_session_server_answers_our_token_only(label_studio):
    assert label_studio.url.startswith("http://127.0.0.1:")
    health = requests.get(f"{label_studio.url}/health", timeout=10)
    assert health.json() == {"status": "UP"}
    ours = requests.get(f"{label_studio.url}/api/current-user/whoami",
                        headers={"Authorization": f"Token {label_studio.api_key}"}, timeout=10)
    assert ours.status_code == 200
    assert ours.json()["email"] == label_studio.credentials.username
    wrong = requests.get(f"{label_studio.url}/api/current-user/whoami",
                         headers={"Authorization": "Token " + "0" * 40}, timeout=10)
    assert wrong.status_code == 401


def test_credentials_are_private_and_never_in_repr(label_studio):
    stored = label_studio.data_dir / "multilabelfy-credentials.json"
    assert stored.stat().st_mode & 0o077 == 0
    assert label_studio.api_key not in repr(label_studio.credentials)
    assert label_studio.credentials.password not in repr(label_studio.credentials)
    assert label_studio.api_key not in (label_studio.data_dir / "label-studio.log").read_text()


def test_restart_on_same_data_dir_keeps_login_and_stop_ends_the_process(label_studio, tmp_path):
    import shutil

    data_dir = tmp_path / "copy"
    # A copy of a migrated data dir starts in seconds and keeps the admin stored in it.
    shutil.copytree(label_studio.seed_dir, data_dir)
    server = LabelStudioServer(data_dir, credentials=Credentials.generate("other@example.org"))
    with server:
        pid = server.pid
        assert server.credentials.username == label_studio.credentials.username
        assert requests.get(f"{server.url}/health", timeout=10).status_code == 200
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert server.pid is None
    assert "Starting development server" in (data_dir / "label-studio.log").read_text()


def test_a_server_that_cannot_start_gives_one_clear_error_with_the_log(label_studio, tmp_path):
    import shutil

    data_dir = tmp_path / "broken"
    shutil.copytree(label_studio.seed_dir, data_dir)
    (data_dir / "label_studio.sqlite3").write_bytes(b"this is not a database")
    server = LabelStudioServer(data_dir, port=free_port(), startup_timeout=120)
    with pytest.raises(UserError) as error:
        server.start()
    message = str(error.value)
    assert "Label Studio exited" in message and "label-studio.log" in message
    assert server.pid is None


def test_the_server_dies_with_the_process_that_started_it(label_studio, tmp_path):
    import shutil
    import signal
    import subprocess
    import sys
    import time

    shutil.copytree(label_studio.seed_dir, tmp_path / "orphan")
    starter = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from multilabelfy.labelstudio.server import LabelStudioServer\n"
         "server = LabelStudioServer(sys.argv[1]).start()\n"
         "print(server.pid, flush=True)\n"
         "time.sleep(600)\n", str(tmp_path / "orphan")],
        stdout=subprocess.PIPE, text=True,
    )
    server_pid = int(starter.stdout.readline())
    os.kill(server_pid, 0)  # running
    starter.send_signal(signal.SIGKILL)  # no cleanup code runs in the starter
    starter.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(server_pid, 0)
