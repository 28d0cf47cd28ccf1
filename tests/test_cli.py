"""The command-line front: sub-command registry and one-line errors."""

import pytest

from multilabelfy.errors import UserError
from multilabelfy.scripts import cli


def test_help_lists_every_registered_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_user_error_becomes_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    def failing_run(args):
        raise UserError(f"dataset {tmp_path} does not exist; pass a folder or a manifest")

    monkeypatch.setitem(cli.COMMANDS, "boom", ("cli", "fails on purpose"))
    monkeypatch.setattr(cli, "add_arguments", lambda parser: parser.set_defaults(), raising=False)
    monkeypatch.setattr(cli, "run", failing_run, raising=False)
    assert cli.main(["boom"]) == 2
    err = capsys.readouterr().err
    assert err == f"multilabelfy: error: dataset {tmp_path} does not exist; pass a folder or a manifest\n"


@pytest.mark.parametrize("argv", [
    ["disagreements", "--project", "3,x", "--out", "OUT"],
    ["finalize", "--annotation", "OUT", "--refinement", "3,x", "--out", "FINAL"],
])
def test_project_ids_that_are_not_numbers_are_one_line_and_write_nothing(argv, tmp_path, capsys):
    argv = [str(tmp_path / a) if a in ("OUT", "FINAL") else a for a in argv]
    assert cli.main(argv) == 2
    flag = argv[argv.index("3,x") - 1]
    assert capsys.readouterr().err == (
        f"multilabelfy: error: {flag} '3,x' must be a project id or comma-separated ids, e.g. 12,13\n")
    assert list(tmp_path.iterdir()) == []
