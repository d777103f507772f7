"""The `ecotrain` console script and `python -m ecotrain`.

`ecotrain run` is dispatched before the Typer app is imported: the child must start within
~0.1 s, and Typer's import alone costs more (see ecotrain.run_cli).
"""

import sys


def main() -> None:
    """Dispatch `run` to its light parser; everything else to the Typer app."""
    if sys.argv[1:2] == ["run"]:
        from ecotrain.run_cli import entry

        entry(sys.argv[2:])
    from ecotrain.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
