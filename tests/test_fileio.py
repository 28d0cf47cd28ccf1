"""Atomic outputs: all or nothing, with ordinary file permissions."""

import os
import stat

import pytest

from multilabelfy.fileio import atomic_path, atomic_write, write_json


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "labels.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.json"]


def test_atomic_path_replaces_on_success(tmp_path):
    target = tmp_path / "sub" / "chart.png"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"png")
        assert not target.exists()
    assert target.read_bytes() == b"png"
    assert sorted(p.name for p in target.parent.iterdir()) == ["chart.png"]


def test_outputs_get_umask_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "summary.json", {"a": 1})
        with atomic_path(tmp_path / "chart.png") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    for name in ("summary.json", "chart.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
    assert (tmp_path / "summary.json").read_text() == '{\n  "a": 1\n}\n'
