"""The command table: the modules of transferlab.cli.commands drive usage, dispatch and did-you-mean."""

from __future__ import annotations

import pytest

import transferlab.cli.commands as commands
from transferlab.cli import main


def test_usage_lists_every_command_module_once_with_its_summary(capsys):
    main.main(["--help"])
    text = capsys.readouterr().out
    for name in main.command_names():
        module = main.load_command(name)
        assert text.count(f"  {module.USAGE}") == 1 and module.SUMMARY in text, name
    assert set(main.command_names()) == {
        "train",
        "validate",
        "plan",
        "lr-find",
        "eval",
        "predict",
        "export",
        "ls",
        "resume",
        "report",
        "rank",
    }


def test_an_unknown_command_suggests_the_closest(capsys):
    with pytest.raises(SystemExit) as info:
        main.main(["evl"])
    assert info.value.code == 2
    assert "Did you mean 'transferlab eval'?" in capsys.readouterr().err


def test_a_new_command_is_one_new_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "hello.py").write_text(
        "ORDER = 50\nUSAGE = 'hello NAME'\nSUMMARY = 'greet someone'\ndef main(argv):\n    print('hello', *argv)\n"
    )
    monkeypatch.setattr(commands, "__path__", [*commands.__path__, str(tmp_path)])
    main.main(["hello", "world"])
    assert capsys.readouterr().out == "hello world\n"
    main.main(["--help"])
    assert "hello NAME" in capsys.readouterr().out
