"""The `nas` command: search, inspect and export results, profile hardware, open the dashboard.

Every user error ends in one line on stderr and a non-zero exit status; `--debug` shows the traceback.
"""

from __future__ import annotations

import sys

import typer

from nas.cli import hardware_cmd, prune_cmd, results_cmd, search_cmd, system_cmd
from nas.errors import NasError

app = typer.Typer(
    name="nas", no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
    help="Neural architecture search for PyTorch.\n\nExample: "
         "[bold]nas search search_spaces.convnet:space --dataset digits --budget 20[/bold]",
)
search_cmd.register(app)
results_cmd.register(app)
system_cmd.register(app)
prune_cmd.register(app)
hardware_cmd.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (2 for user errors)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    try:
        app(args, standalone_mode=False)
    except NasError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted: completed trials are saved; continue with --resume", file=sys.stderr)
        return 130
    except typer.Exit as e:
        return e.exit_code
    except Exception as e:  # click's usage errors
        import click

        if isinstance(e, click.ClickException):
            e.show()
            return e.exit_code
        raise
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
