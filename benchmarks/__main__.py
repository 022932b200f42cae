"""``python -m benchmarks``: the same command as ``liveupload bench``."""

from __future__ import annotations

import argparse
import sys

import actors
from benchmarks.cli import configure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure the runtime against its baselines and limits.",
    )
    parser.add_argument("--log-level", default="warning", help="debug, info, warning, error (default warning)")
    parser.add_argument("--log-json", action="store_true", help="log as JSON lines")
    configure(parser)
    args = parser.parse_args(argv)
    actors.configure_logging(args.log_level, json=args.log_json)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
