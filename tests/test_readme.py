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


def test_the_sections_each_branch_added_are_checked() -> None:
    """The README's commands are checked above only if the extractor finds them: each
    topic section (install extras, integrations, grid and advice, shared GPUs, hostile
    input, lineage, reports) keeps commands that it sees."""
    paths = {tuple(subcommand(c)) for c in readme_commands()}
    for path in [
        ("grid", "import"),
        ("grid", "show"),
        ("advise",),
        ("doctor",),
        ("summary",),
        ("compare",),
        ("sync",),
        ("export",),
        ("report",),
        ("checkpoint", "register"),
        ("estimate",),
        ("lineage",),
        ("savings",),
        ("db", "upgrade"),
        ("import", "codecarbon"),
    ]:
        assert path in paths, path
    sync_options = {t for c in readme_commands() if c[1] == "sync" for t in c[2:]}
    assert {"--status", "--retry-quarantined"} <= sync_options


def test_every_extra_the_readme_names_exists() -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    # `pip install ".[x]"` and the install table's rows (| `[x]` | ...)
    named = set(re.findall(r"\.\[([a-z]+)\]", README))
    install = README.split("## Install what a node needs")[1].split("\n## ")[0]
    named |= set(re.findall(r"(?m)^\| `\[([a-z]+)\]`", install))
    assert {"dashboard", "postgres", "parquet", "mlflow", "wandb", "prometheus"} <= named
    assert named <= set(extras), named - set(extras)
    ordered = [h[3:] for h in README.splitlines() if h.startswith("## ")]
    assert ordered[:2] == ["Set up (two commands)", "Quick start"]  # then the topics
