"""One look for every command's help: metavars that say what to type, not Python types.

Typer labels an option by its annotation (``--since <str>``, ``--tag <list[str]>``). The
click command tree is walked once before it runs and each option without an explicit
metavar gets one from its name (``--since WHEN``, ``--tag KEY=VALUE``), else from its type.
"""

from __future__ import annotations

from typing import Any

METAVARS = {
    "project": "NAME",
    "user": "NAME",
    "since": "WHEN",
    "until": "WHEN",
    "status": "STATUS",
    "job": "ID",
    "tag": "KEY=VALUE",
    "limit": "N",
    "db": "URL|PATH",
    "mode": "MODE",
    "fmt": "FORMAT",
    "output": "FILE",
    "port": "PORT",
    "host": "ADDR",
    "gpu": "MODEL",
    "gpus": "N",
    "hours": "HOURS",
    "gpu_hours": "HOURS",
    "params": "N",
    "tokens": "N",
    "mfu": "FRACTION",
    "region": "REGION",
    "pue": "PUE",
    "energy_kwh": "KWH",
    "co2_kg": "KG",
    "source": "TEXT",
    "run": "RUN",
    "by": "KEYS",
    "every": "SECONDS",
    "textfile": "DIR",
}
BY_TYPE = {"integer": "N", "int": "N", "float": "NUMBER", "text": "TEXT", "str": "TEXT"}


def apply_metavars(command: Any) -> Any:
    """Give every option of ``command`` and its subcommands a readable metavar (in place)."""
    for param in command.params:
        # duck-typed: Typer may carry its own copy of click
        is_option = getattr(param, "param_type_name", "") == "option"
        if is_option and not getattr(param, "is_flag", False) and param.metavar is None:
            bare = getattr(param, "bare_type", None)  # Typer: "str", "int", "list[str]"
            name = bare() if callable(bare) else getattr(getattr(param, "type", None), "name", "")
            name = str(name).lower()
            param.metavar = METAVARS.get(param.name or "", BY_TYPE.get(name, "VALUE"))
        elif getattr(param, "param_type_name", "") == "argument":
            # the argument's name already says what to give: no "<str>" after it
            if param.metavar is None:
                param.metavar = (param.name or "value").upper()
            param.display_type_rich = lambda ctx: None
    for sub in getattr(command, "commands", {}).values():
        apply_metavars(sub)
    return command


def click_command(app: Any) -> Any:
    """The Typer app as a click command, with the metavars applied."""
    import typer.main

    return apply_metavars(typer.main.get_command(app))
