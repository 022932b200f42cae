"""The ``liveupload`` command line.

Each subcommand lives in a module of its own with ``configure(parser)``, which
adds its arguments and sets ``run=<callable(args) -> exit status>``; this file
only assembles them, so the server, the benchmark harness and the crash drill
each own their command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import actors

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("server.demo", "a short demonstration of the process runtime"),
    "serve": ("server.serve", "serve the upload page and save uploads under ./uploads"),
    "send": ("server.send", "upload files to a liveupload server over LiveView's protocol"),
    "bench": ("benchmarks.cli", "measure the runtime against its baselines and limits"),
    "crashtest": ("benchmarks.crashdrill.cli", "randomized supervision crash drill"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liveupload", description="BEAM-style upload runtime on Pykka")
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error (default info)")
    parser.add_argument("--log-json", action="store_true", help="log as JSON lines")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).configure(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    actors.configure_logging(args.log_level, json=args.log_json)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
