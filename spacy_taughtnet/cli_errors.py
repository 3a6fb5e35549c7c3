"""How every command line of the package reports a user's error: one red line on stderr and
exit code 1, no traceback. Cheap to import (typer and errors.py only), as the CLIs must be."""
import functools
from typing import Callable

import typer

from .errors import TaughtNetError


def user_errors(command: Callable) -> Callable:
    """Run a command, turning a TaughtNetError or OSError (a file that cannot be read or
    written, a full disk) into one red line on stderr and exit code 1."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (TaughtNetError, OSError) as err:
            typer.secho(f"Error: {err}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1)

    return run
