"""The `nas` command: search, inspect and export results, profile hardware, open the dashboard.

Every user error ends in one line on stderr and a non-zero exit status; `--debug` shows the traceback.
"""

from __future__ import annotations

import re
import signal
import sys

import click
import typer

from nas.cli import hardware_cmd, prune_cmd, results_cmd, search_cmd, system_cmd
from nas.cli.common import printable
from nas.cli.signals import INTERRUPTED, INTERRUPTED_STATUS, Stopped, stop_on
from nas.errors import NasError

app = typer.Typer(
    name="nas", no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    help="Neural architecture search for PyTorch.\n\nExample: "
         "[bold]nas search search_spaces.convnet:space --dataset digits --budget 20[/bold]",
)
search_cmd.register(app)
results_cmd.register(app)
system_cmd.register(app)
prune_cmd.register(app)
hardware_cmd.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (2 for user errors, 130/143 when stopped)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    try:
        with stop_on(signal.SIGTERM):
            # without standalone mode click returns typer.Exit's code instead of raising it
            status = app(args, standalone_mode=False)
        if status == INTERRUPTED_STATUS:  # typer turns Ctrl-C into a quiet exit status 130
            return _fail(INTERRUPTED, INTERRUPTED_STATUS)
        if isinstance(status, int) and status:
            return status
    except NasError as e:
        if debug:
            raise
        return _fail(f"error: {e}", 2)
    except click.exceptions.NoArgsIsHelpError:
        return 0  # `nas` alone: the help was printed, which is what was asked for
    except click.ClickException as e:  # usage: unknown command or option, a value of the wrong type
        if debug:
            raise
        # typer repeats its "Did you mean" hint: keep each sentence once
        message = " ".join(dict.fromkeys(re.split(r"(?<=[.?!])\s+", e.format_message())))
        return _fail(f"error: {message} (see nas {_command(args)}--help)", 2)
    except Stopped as e:
        return _fail(e.message, e.status)
    except (click.exceptions.Abort, KeyboardInterrupt):
        return _fail(INTERRUPTED, INTERRUPTED_STATUS)
    except click.exceptions.Exit as e:
        return e.exit_code
    except Exception as e:  # a bug of nas, not the user's input: one line, the traceback on request
        if debug:
            raise
        return _fail(f"internal error: {type(e).__name__}: {e} (run again with --debug for the traceback "
                     "and report it)", 1)
    return 0


def _fail(message: str, status: int) -> int:
    # exactly one line, and no terminal escapes from a name or value the message quotes
    print(printable(" ".join(message.split())), file=sys.stderr)
    return status


def _command(args: list[str]) -> str:
    return f"{args[0]} " if args and args[0] in {c.name for c in app.registered_commands} else ""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
