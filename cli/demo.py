"""``liveupload demo``: a linked process crashes and its trapping peer hears why."""

from __future__ import annotations

import argparse
import queue
from typing import Any

import structlog

import actors

log = structlog.get_logger("liveupload.demo")


class Listener(actors.Process):
    trap_exit = True

    def __init__(self, heard: queue.Queue) -> None:
        super().__init__()
        self.heard = heard

    def on_receive(self, message: Any) -> None:
        self.heard.put(message)


class Fragile(actors.Process):
    def on_receive(self, message: Any) -> None:
        raise RuntimeError(f"cannot handle {message!r}")


def run(_args: argparse.Namespace) -> int:
    heard: queue.Queue = queue.Queue()
    listener, fragile = Listener.start(heard), Fragile.start()
    actors.link(listener, fragile)
    fragile.tell("a chunk")
    exit_signal = heard.get(timeout=5)
    log.info("linked process exited", sender=str(exit_signal.sender), reason=repr(exit_signal.reason))
    listener.stop()
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(run=run)
