"""The ``liveupload`` command line.

Each subcommand lives in a module of its own with ``configure(parser)``, which
adds its arguments and sets ``run=<callable(args) -> exit status>``; this file
only assembles them. A subcommand's module is imported only when that
subcommand is asked for (or its help), so ``liveupload serve`` never loads the
benchmark harness, and nothing below the command line imports it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

import actors

__all__ = ["COMMANDS", "add_global_flags", "build_parser", "main"]

#: Subcommand -> (its module, one line of help).
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("cli.demo", "a short demonstration of the process runtime"),
    "serve": ("cli.serve", "serve the upload page and save uploads under ./saved (or --store s3://...)"),
    "s3": ("cli.s3", "S3 store maintenance: abort stale multipart uploads (s3 cleanup)"),
    "send": ("cli.send", "upload files to a liveupload server over LiveView's protocol"),
    "bench": ("benchmarks.cli", "measure the runtime against its baselines and limits"),
    "crashtest": ("benchmarks.crashdrill.cli", "randomized supervision crash drill"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported to add its arguments."""
    parser = argparse.ArgumentParser(prog="liveupload", description="BEAM-style upload runtime on Pykka")
    add_global_flags(parser, default="info", json_default=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        # Also after the subcommand; SUPPRESS keeps a flag given before it from being reset.
        add_global_flags(sub, default=argparse.SUPPRESS, json_default=argparse.SUPPRESS)
        if name == command:
            importlib.import_module(module).configure(sub)
    return parser


def add_global_flags(parser: argparse.ArgumentParser, *, default: Any, json_default: Any) -> None:
    """``--log-level`` and ``--log-json``, accepted before or after the subcommand."""
    parser.add_argument("--log-level", default=default, help="debug, info, warning, error (default info)")
    parser.add_argument("--log-json", action="store_true", default=json_default, help="log as JSON lines")


def chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is one), if any."""
    return next((word for word in argv if word in COMMANDS), None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(chosen_command(argv)).parse_args(argv)
    actors.configure_logging(args.log_level, json=args.log_json)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
