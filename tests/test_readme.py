"""Every command the README shows exists and accepts the options it is shown with."""

from __future__ import annotations

import re
import shlex

from typer.testing import CliRunner

from ecotrain.cli import app
from ecotrain.run_cli import build_parser
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def readme_commands() -> list[list[str]]:
    """`ecotrain …` invocations in the README's code blocks (indented or fenced)."""
    commands, fenced = [], False
    for line in README.splitlines():
        if line.strip().startswith("```"):
            fenced = not fenced
            continue
        if not (fenced or line.startswith("    ")):
            continue
        text = line.strip()
        if "ecotrain " not in text or text.startswith(("import", "#", "with ", "print")):
            continue
        text = text[text.index("ecotrain ") :].split(" #")[0].strip()
        try:
            commands.append(shlex.split(text))
        except ValueError:
            continue
    return [c for c in commands if len(c) > 1 and re.match(r"^[a-z-]+$", c[1])]


def subcommand(argv: list[str]) -> list[str]:
    """The command path: `ecotrain db upgrade` -> ["db", "upgrade"]."""
    path = [argv[1]]
    if argv[1] in ("config", "db", "checkpoint", "import", "grid") and len(argv) > 2:
        path.append(argv[2])
    return path


def test_the_two_setup_commands_are_what_ci_runs() -> None:
    demo = 'pip install ".[dashboard]" && bash sample_runs/demo.sh'
    tests = 'pip install -q -e ".[dev]" && python -m pytest -q'
    assert demo in README and tests in README
    assert tests in (ROOT / ".ci" / "run").read_text()
    assert (ROOT / "sample_runs" / "demo.sh").is_file()


def test_every_readme_command_and_option_exists() -> None:
    commands = readme_commands()
    assert len(commands) >= 20
    helps: dict[tuple[str, ...], str] = {}
    for argv in commands:
        if argv[1] == "run":
            # ecotrain's own options end where the command begins: the real parser decides.
            ns = build_parser().parse_args(argv[2:])
            assert ns.command, argv
            continue
        path = tuple(subcommand(argv))
        if path not in helps:
            result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
            assert result.exit_code == 0, (argv, result.output)
            helps[path] = result.output
        options = []
        for token in argv[1 + len(path) :]:
            if token == "--":
                break  # the rest belongs to the wrapped command
            if token.startswith("--"):
                options.append(token.split("=")[0])
        for option in options:
            assert option in helps[path], (path, option)
