"""``liveupload bench`` / ``python -m benchmarks``: run the scenarios, print the
table, write the JSON and the plots (and, with ``--markdown FILE``, the
figures section of a Markdown page).

``configure(parser)`` adds the arguments and sets ``run``; the ``liveupload``
command line and ``benchmarks.__main__`` both use it. The table goes to
stdout (it is the command's product); progress goes to stderr; the runtime's
logs go wherever logging is configured.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from datetime import datetime, timezone
from typing import Any

import structlog

from benchmarks import substrates
from benchmarks.machine import describe_machine
from benchmarks.markdown import write_figures
from benchmarks.params import PRESETS, Params
from benchmarks.plots import write_plots
from benchmarks.progress import NoProgress, ProgressBar
from benchmarks.report import render, write_json
from benchmarks.scenarios import DEFAULT, NAMES, load

__all__ = ["configure", "run", "params_from_args", "run_scenarios"]

log = structlog.get_logger("liveupload.bench")


class _Scenarios(argparse.Action):
    """``scenario`` positionals, checked by hand: argparse rejects an empty
    ``nargs="*"`` list when ``choices`` is set."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        unknown = [v for v in values if v not in NAMES]
        if unknown:
            parser.error(f"unknown scenario {', '.join(unknown)} (choose from {', '.join(NAMES)})")
        setattr(namespace, self.dest, list(dict.fromkeys(values)))


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the harness's arguments to ``parser`` and set ``run``."""
    parser.add_argument(
        "scenario",
        nargs="*",
        action=_Scenarios,
        default=[],
        metavar="SCENARIO",
        help=f"which to run: {', '.join(NAMES)} (default: all but s3, which needs OpenStack Swift installed)",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        action="store_const",
        const="quick",
        dest="preset",
        help="tiny run (seconds): U up to 100, 200 channel spawns",
    )
    size.add_argument(
        "--full",
        action="store_const",
        const="full",
        dest="preset",
        help="the issues' scale: U up to 10,000, 1,000,000 pooled processes, 100,000 pooled idle channels, "
        "20,000 channels on threads, 1,000 crashing uploads",
    )
    parser.set_defaults(preset="default")
    parser.add_argument(
        "--out",
        default="bench-results",
        metavar="DIR",
        help="where results.json and the plots go (default ./bench-results)",
    )
    parser.add_argument(
        "--substrate",
        action="append",
        choices=sorted(substrates.SUBSTRATES),
        help="run on this substrate (repeatable; default: every one available)",
    )
    parser.add_argument("--max-uploads", type=int, metavar="U", help="largest U of channels: 1, 10, 100... up to U")
    parser.add_argument(
        "--chunk-bytes", type=int, metavar="B", help="bytes per chunk (default 64000, the client's chunk size)"
    )
    parser.add_argument(
        "--chunk-budget", type=int, metavar="N", help="chunks per channels point (C = N / U, at least --min-chunks)"
    )
    parser.add_argument("--min-chunks", type=int, metavar="C", help="fewest chunks per upload")
    parser.add_argument("--repeat", type=int, metavar="R", help="runs of every channels point (the best is shown)")
    parser.add_argument(
        "--client-threads", type=int, metavar="T", help="client threads driving the uploads (default 4)"
    )
    parser.add_argument("--uploads-per-session", type=int, metavar="N", help="uploads per UploadSession (default 100)")
    parser.add_argument(
        "--max-spawn", type=int, metavar="K", help="most channels the spawn scenario starts (the flag bound)"
    )
    parser.add_argument(
        "--spawn-baseline", type=int, metavar="K", help="plain Pykka actors and bare processes on threads to spawn"
    )
    parser.add_argument(
        "--pool-spawn",
        type=int,
        metavar="K",
        help="bare processes to spawn on the pool (default 100,000; --full 1,000,000)",
    )
    parser.add_argument(
        "--pool-spawn-small",
        type=int,
        metavar="K",
        help="the small K whose per-process cost --pool-spawn's must stay within 2x of (default 10,000)",
    )
    parser.add_argument(
        "--pool-channels",
        type=int,
        metavar="K",
        help="idle channels to join on the pool (default 5,000; --full 100,000)",
    )
    parser.add_argument(
        "--memory-reserve-mb", type=int, metavar="MB", help="stop spawning below this much available memory"
    )
    parser.add_argument(
        "--spawn-until-limit",
        action="store_true",
        default=None,
        help="spawn: join channels past --max-spawn / --pool-channels until a real limit (no new thread, "
        "memory, or the --spawn-seconds time budget); the row's limit column says which",
    )
    parser.add_argument(
        "--spawn-seconds",
        type=float,
        metavar="S",
        help="time budget of each channel row with --spawn-until-limit (default 120)",
    )
    parser.add_argument("--crash-uploads", type=int, metavar="U", help="uploads in the crash scenario")
    parser.add_argument("--crash-share", type=float, metavar="F", help="share of them that crash (default 0.5)")
    parser.add_argument("--seed", type=int, help="seed of the crash plan")
    parser.add_argument(
        "--blocking-writers", type=int, metavar="N", help="writers blocking in every chunk (default 200)"
    )
    parser.add_argument(
        "--blocking-seconds", type=float, metavar="S", help="how long the blocking load runs (default 1.5)"
    )
    parser.add_argument(
        "--quiet-seconds",
        type=float,
        metavar="S",
        help="how long the bystander is pinged without the load (default 0.5)",
    )
    parser.add_argument(
        "--server-uploads", type=int, metavar="U", help="concurrent uploads in the server scenario (default 100)"
    )
    parser.add_argument("--server-chunks", type=int, metavar="C", help="chunks per upload in the server scenario")
    parser.add_argument(
        "--page-events", type=int, metavar="N", help="progress events per point of the events scenario (default 2,000)"
    )
    parser.add_argument(
        "--server-client-processes",
        type=int,
        metavar="P",
        help="OS processes the server's clients run in (default 2; --full 4)",
    )
    parser.add_argument(
        "--wire-scale",
        type=float,
        metavar="F",
        help="wire: fraction of issue 16's file sizes (W1 16 MB, W2 200 MB, W3 1 MB; default 1, --quick 0.02)",
    )
    parser.add_argument(
        "--wire-concurrency-scale",
        type=float,
        metavar="F",
        help="wire: fraction of issue 16's concurrent uploads (W1 20, W2 1, W3 200; default 1)",
    )
    parser.add_argument(
        "--wire-repeat", type=int, metavar="N", help="wire: interleaved runs per workload and server (default 3)"
    )
    parser.add_argument(
        "--wire-client-processes", type=int, metavar="P", help="wire: OS processes the clients run in (default 2)"
    )
    parser.add_argument(
        "--wire-events",
        type=int,
        metavar="N",
        help="wire: progress events timed with 10 and with 100 entries on the page, and event frames to the "
             "bare endpoint (default 3,000: the server's CPU comes in 10 ms ticks; --full 5,000)",
    )
    parser.add_argument(
        "--wire-server-checkout",
        metavar="DIR",
        help="wire: run liveupload serve from this checkout of the project (e.g. a git worktree of an older "
             "commit), against the same ceiling and clients: before/after figures in one harness",
    )
    parser.add_argument(
        "--wire-pyview",
        dest="wire_pyview_python",
        metavar="PYTHON",
        help="wire: also run the workloads against a pyview-web upload page served by this interpreter (of a "
             "separate virtual environment with pyview-web, uvicorn and websockets), driven by the same client",
    )
    parser.add_argument(
        "--wire-workload",
        action="append",
        choices=("W1", "W2", "W3"),
        help="wire: run this workload (repeatable; default all three)",
    )
    parser.add_argument(
        "--s3-big-uploads",
        type=int,
        metavar="N",
        help="concurrent 16 MB uploads in the s3 scenario (default 10; --full 100)",
    )
    parser.add_argument(
        "--s3-small-uploads",
        type=int,
        metavar="M",
        help="concurrent 256 KB uploads in the s3 scenario (default 100; --full 1,000)",
    )
    parser.add_argument(
        "--markdown",
        nargs="?",
        const="-",
        metavar="FILE",
        help="print the tables as Markdown; with FILE, also write them (dated by this run) between the "
        "figures markers of FILE, keeping the rest of it (docs/benchmarks.md)",
    )
    parser.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.set_defaults(run=run)


_OVERRIDES = (
    "page_events",
    "max_uploads",
    "chunk_bytes",
    "chunk_budget",
    "min_chunks",
    "repeat",
    "client_threads",
    "uploads_per_session",
    "max_spawn",
    "spawn_baseline",
    "pool_spawn",
    "pool_spawn_small",
    "pool_channels",
    "memory_reserve_mb",
    "spawn_until_limit",
    "spawn_seconds",
    "crash_uploads",
    "crash_share",
    "seed",
    "blocking_writers",
    "blocking_seconds",
    "quiet_seconds",
    "server_uploads",
    "server_chunks",
    "server_client_processes",
    "wire_scale",
    "wire_concurrency_scale",
    "wire_repeat",
    "wire_client_processes",
    "wire_events",
    "wire_server_checkout",
    "wire_pyview_python",
    "s3_big_uploads",
    "s3_small_uploads",
)


def params_from_args(args: argparse.Namespace) -> Params:
    """The preset named by the flags, with single knobs overridden."""
    params = PRESETS[args.preset]
    changes = {name: getattr(args, name) for name in _OVERRIDES if getattr(args, name, None) is not None}
    changes["substrates"] = tuple(args.substrate or substrates.available())
    if getattr(args, "wire_workload", None):
        changes["wire_workloads"] = tuple(dict.fromkeys(args.wire_workload))
    for name, value in changes.items():
        if isinstance(value, int) and not isinstance(value, bool) and value < 1 and name != "seed":
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if isinstance(value, float) and name.endswith("_seconds") and value <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {value}")
    checkout = changes.get("wire_server_checkout")
    if checkout is not None:
        if not os.path.isfile(os.path.join(checkout, "cli", "__main__.py")):
            raise ValueError(f"--wire-server-checkout {checkout}: not a checkout of liveupload (no cli/__main__.py)")
        changes["wire_server_checkout"] = os.path.abspath(checkout)
    python = changes.get("wire_pyview_python")
    if python is not None:
        changes["wire_pyview_python"] = pyview_python(python)
    for knob in ("wire_scale", "wire_concurrency_scale"):
        if not 0 < changes.get(knob, getattr(params, knob)) <= 1:
            raise ValueError(f"--{knob.replace('_', '-')} must be within (0, 1]")
    if not 0 <= changes.get("crash_share", params.crash_share) <= 1:
        raise ValueError("--crash-share must be within 0..1")
    return params.with_(**changes)


def pyview_python(python: str) -> str:
    """``python`` (its absolute path) if it is an interpreter in which ``import pyview`` works, else ValueError."""
    path = shutil.which(python) or python
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise ValueError(f"--wire-pyview {python}: no such interpreter")
    try:
        done = subprocess.run([path, "-c", "import pyview, uvicorn"], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ValueError(f"--wire-pyview {python}: cannot run it: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        raise ValueError(f"--wire-pyview {python}: import pyview, uvicorn failed: {last}")
    return os.path.abspath(path)


def run_scenarios(params: Params, names: list[str], progress: Any) -> dict[str, Any]:
    """Run ``names`` in order; the results dict (a failed scenario gets ``error``)."""
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "params": params.to_json(),
        "scenarios": {},
    }
    for name in names:
        began = time.perf_counter()
        try:
            section = load(name).run(params, progress)
        except Exception as exc:  # report it, run the others (logged)
            log.exception("bench_scenario_failed", scenario=name)
            section = {"error": repr(exc), "rows": [], "targets": []}
        section["seconds"] = time.perf_counter() - began
        results["scenarios"][name] = section
    results["seconds"] = time.perf_counter() - started
    return results


def run(args: argparse.Namespace) -> int:
    """Run the chosen scenarios; print the table; write ``DIR/results.json`` and plots."""
    try:
        params = params_from_args(args)
    except ValueError as exc:
        print(f"liveupload bench: {exc}")
        return 2
    if args.markdown in NAMES:  # `--markdown spawn`: a scenario, not a file
        args.scenario, args.markdown = [*args.scenario, args.markdown], "-"
    names = [n for n in NAMES if n in args.scenario] if args.scenario else list(DEFAULT)
    total = sum(load(name).steps(params) for name in names)
    progress = NoProgress() if args.no_progress else ProgressBar(total)
    try:
        results = run_scenarios(params, names, progress)
    finally:
        progress.close()
    print(render(results, markdown=args.markdown is not None), end="")
    json_path = write_json(results, os.path.join(args.out, "results.json"))
    plots = [] if args.no_plots else write_plots(results, args.out)
    written = [json_path, *plots]
    if args.markdown not in (None, "-"):
        written.append(write_figures(args.markdown, results, plots))
    print("\nwrote " + ", ".join(written))
    failed = any("error" in section for section in results["scenarios"].values())
    missed = any(t["met"] is False for s in results["scenarios"].values() for t in s.get("targets", []))
    return 1 if failed or (args.check and missed) else 0
