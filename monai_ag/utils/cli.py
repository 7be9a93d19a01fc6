"""The project's one scheme for commands: ``python -m monai_ag.<package>`` runs the package's ``__main__.py``,
which calls a ``main(argv)`` built on :func:`command_parser` and :func:`run_command` (same ``--quiet`` flag, same
logging format, expected errors printed as one ``error:`` line with exit status 1).

Example::

    def main(argv=None) -> int:
        parser = command_parser("python -m monai_ag.data.phantom", "Generate a phantom dataset.")
        parser.add_argument("--output_dir", required=True)
        return run_command(parser, argv, lambda args: print(generate_phantom_dataset(args.output_dir)))
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["EXPECTED_ERRORS", "command_parser", "run_command"]

#: errors a command reports as one line (a refused or invalid request), not as a traceback
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileExistsError, FileNotFoundError)


def command_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` for ``prog`` with the commands' common ``--quiet`` flag (only log warnings)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--quiet", action="store_true", help="only log warnings")
    return parser


def run_command(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    run: Callable[[argparse.Namespace], Any],
    errors: tuple[type[BaseException], ...] = EXPECTED_ERRORS,
) -> int:
    """
    Parse ``argv`` (default ``sys.argv[1:]``), set up logging (INFO, or WARNING with ``--quiet``) and call
    ``run(args)``.

    Returns:
        The exit status: 0, or 1 after printing ``error: <message>`` to stderr for one of ``errors``.
    """
    args = parser.parse_args(argv)
    quiet = getattr(args, "quiet", False)
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(args)
    except errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
