"""The ``liveupload`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import structlog

import actors

log = structlog.get_logger("liveupload.cli")


def _demo(_args: argparse.Namespace) -> int:
    """Show the runtime: a linked process crashes, its trapping peer hears why."""
    import queue

    heard: queue.Queue = queue.Queue()

    class Listener(actors.Process):
        trap_exit = True

        def on_receive(self, message):
            heard.put(message)

    class Fragile(actors.Process):
        def on_receive(self, message):
            raise RuntimeError(f"cannot handle {message!r}")

    listener, fragile = Listener.start(), Fragile.start()
    actors.link(listener, fragile)
    fragile.tell("a chunk")
    exit_signal = heard.get(timeout=5)
    log.info("linked process exited", sender=str(exit_signal.sender), reason=repr(exit_signal.reason))
    listener.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liveupload", description=__doc__)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-json", action="store_true", help="log as JSON lines")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="a short demonstration of the process runtime")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    actors.configure_logging(args.log_level, json=args.log_json)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
