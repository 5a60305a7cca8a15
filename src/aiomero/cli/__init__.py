"""The ``aiomero`` command: crawl a server, check a login, run an emulator.

Exit statuses: 0 success; 1 the command ran but some of its work failed;
2 a usage error (a bad option, a missing host or password, a checkpoint
written with other options, an output another crawl is writing, a group the
user may not read); 3 the server refused the login;
4 no server reachable, or the server was lost and did not come back; 130
interrupted (SIGINT or SIGTERM).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import click

from .. import __version__
from ._connect import (
    EXIT_AUTH,
    EXIT_ERRORS,
    EXIT_INTERRUPTED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from .crawl import crawl
from .emulator import emulator
from .whoami import whoami

__all__ = [
    "EXIT_AUTH",
    "EXIT_ERRORS",
    "EXIT_INTERRUPTED",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "cli",
    "main",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aiomero")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="log more: -v for what happens, -vv for every call",
)
def cli(verbose: int) -> None:
    """asyncio tools for OMERO servers."""
    # Configured before omero-py's first client, whose own basicConfig()
    # then leaves this one in place.
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # Failures the command reports in its own words are logged by the
    # library too; without -v only the crawl's own warnings show.
    quiet = level if verbose else logging.ERROR
    logging.getLogger("aiomero").setLevel(quiet)
    logging.getLogger("omero").setLevel(quiet)
    logging.getLogger("aiomero.crawl").setLevel(level)


cli.add_command(crawl)
cli.add_command(whoami)
cli.add_command(emulator)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line; exits with the status of the command."""
    args = list(argv) if argv is not None else None
    try:
        status = cli.main(args=args, prog_name="aiomero", standalone_mode=False)
    except click.exceptions.Abort:
        # Ctrl-C before the command's own handling began, or at a prompt.
        click.echo("\ninterrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(status if isinstance(status, int) else 0)
