"""The built wheel holds every package of the tree and the templates, as a non-editable install needs."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"multilabelfy": "multilabelfy", "scripts": "multilabelfy/scripts", "analysis": "multilabelfy/analysis",
           "ml_backend": "multilabelfy/ml_backend", "project_templates": "multilabelfy/project_templates"}


@pytest.mark.slow
def test_wheel_contains_every_module_and_template(tmp_path):
    # Built from a copy: a build/ folder left in the tree by an earlier build would hide missing packages.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(source)], check=True)
    (wheel,) = tmp_path.glob("multilabelfy_ls-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for folder, package_path in FOLDERS.items():
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in {".py", ".xml"} and "__pycache__" not in path.parts:
                expected.add(f"{package_path}/{path.relative_to(ROOT / folder).as_posix()}")
    assert expected - names == set()
    assert "scripts/cli.py" not in names and "analysis/__init__.py" not in names  # no top-level collisions
