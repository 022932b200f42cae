"""``liveupload crashtest``: the randomized supervision crash drill.

    liveupload crashtest [--uploads N] [--seed S] [--duration SECONDS]
                         [--substrate pool|thread] [--clients N]
                         [--show-logs] [--no-progress]

Runs N concurrent uploads with faults injected at random under a supervision
tree, checks the invariants, and prints the report on stdout. The seed (random
unless given) is printed first; the same seed reproduces the same fault plan.
With ``--duration``, rounds run back to back until the time is up, each with
its own seed (the first is S, the next ones drawn from it), each printed.
The exit status is 1 if any invariant failed in any round.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from typing import Any

from benchmarks.crashdrill.plan import DrillConfig, make_plan
from benchmarks.crashdrill.report import render_result
from benchmarks.crashdrill.run import run_plan

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--uploads", type=_positive, default=100, metavar="N", help="uploads per round (default 100)")
    parser.add_argument(
        "--seed", type=int, default=None, metavar="S", help="the plan's seed (default: random, printed)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="keep running rounds (a new seed each) until this many seconds have passed",
    )
    parser.add_argument(
        "--substrate",
        choices=("pool", "thread"),
        default=None,
        help="where processes run (default: the runtime's default)",
    )
    parser.add_argument(
        "--clients",
        type=_positive,
        default=None,
        metavar="N",
        help="client threads (default: one per session, at most 64)",
    )
    parser.add_argument(
        "--show-logs", action="store_true", help="also log every event (crash reports included) to stderr"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    config = DrillConfig()
    out = sys.stdout
    print(f"crashtest: seed {seed}, {args.uploads} uploads per round", file=out, flush=True)
    seeds = random.Random(seed)
    started = time.monotonic()
    rounds = failures = uploads = 0
    round_seed = seed
    while True:
        rounds += 1
        plan = make_plan(round_seed, args.uploads, config)
        progress = _Progress(args.uploads, f"seed {round_seed}", disabled=args.no_progress)
        try:
            result = run_plan(
                plan,
                substrate=args.substrate,
                clients=args.clients,
                progress=progress,
                silence_logs=not args.show_logs,
            )
        finally:
            progress.close()
        text, violations = render_result(result)
        uploads += len(plan.uploads)
        last = args.duration is None or time.monotonic() - started >= args.duration
        if violations or last:
            print(text, file=out, flush=True)
        else:
            print(f"round {rounds}: seed {round_seed}: passed in {result.elapsed:.2f} s", file=out, flush=True)
        if violations:
            failures += 1
        if last:
            break
        round_seed = seeds.getrandbits(32)
    if rounds > 1:
        verdict = "every invariant held" if not failures else f"{failures} round(s) FAILED"
        print(
            f"\n{rounds} rounds, {uploads} uploads in {time.monotonic() - started:.1f} s: {verdict}; "
            f"rerun any round with: liveupload crashtest --uploads {args.uploads} --seed <its seed>",
            file=out,
            flush=True,
        )
    return 1 if failures else 0


class _Progress:
    """Uploads done, on stderr: a tqdm bar if tqdm is installed, else a plain
    line at every quarter (nothing for short runs or with ``--no-progress``)."""

    def __init__(self, total: int, label: str, disabled: bool) -> None:
        self.total = total
        self.done = 0
        self.lock = threading.Lock()
        self.bar: Any = None
        self.plain = False
        self.label = label
        if disabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            self.plain = total >= 100
            return

        class _Bar(tqdm):
            monitor_interval = 0  # no monitor thread: the drill counts threads

        self.bar = _Bar(total=total, desc=label, unit="upload", file=sys.stderr, leave=False, disable=None)

    def __call__(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)
            return
        if not self.plain:
            return
        with self.lock:
            before = self.done * 4 // self.total
            self.done += n
            if self.done * 4 // self.total > before:
                print(f"  {self.label}: {self.done}/{self.total} uploads", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
