"""``liveupload s3 cleanup``: abort the multipart uploads a crash left behind.

    liveupload s3 cleanup --older-than 24h --store s3://bucket/prefix [--dry-run]

Lists the multipart uploads under the prefix (``ListMultipartUploads``) that
were started more than ``--older-than`` ago (``30m``, ``24h``, ``2d``, or
seconds) and aborts them with :func:`writers.s3.cleanup_stale`, printing one
line per upload; ``--dry-run`` only lists them. Endpoint and credentials come
from the standard AWS variables, as for ``serve --store``.
"""

from __future__ import annotations

import argparse
import re
import sys

from botocore.exceptions import BotoCoreError, ClientError

import writers.s3 as s3

from .store import check_store, parse_store, quiet_client_logs

__all__ = ["configure", "parse_duration", "run_cleanup"]

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds in ``30m``, ``24h``, ``2d``, ``90s`` or ``90``; ``ValueError`` otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 24h, 2d)")
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run_cleanup(args: argparse.Namespace) -> int:
    quiet_client_logs()
    try:
        store = parse_store(args.store)
    except ValueError as exc:
        print(f"liveupload s3 cleanup: {exc}", file=sys.stderr)
        return 2
    try:
        problem = check_store(store)
        if problem:
            print(f"liveupload s3 cleanup: {problem}", file=sys.stderr)
            return 2
        client = s3.client_for({})
        try:
            found = s3.cleanup_stale(client, store.bucket, store.prefix, args.older_than, abort=not args.dry_run)
        except (BotoCoreError, ClientError) as exc:
            print(f"liveupload s3 cleanup: listing {store} failed: {s3.s3_reason(exc)[1]}", file=sys.stderr)
            return 1
        failed = 0
        for item in found:
            if args.dry_run:
                status = "stale"
            elif item["aborted"]:
                status = "aborted"
            else:
                status, failed = f"not aborted ({item['reason'][1]})", failed + 1
            print(f"{status}\t{item['initiated'].isoformat()}\t{item['upload_id']}\ts3://{store.bucket}/{item['key']}")
        verb = "found" if args.dry_run else "aborted"
        print(
            f"{len(found) - failed} stale multipart upload(s) {verb} under {store} (older than {args.older_than:g} s)"
        )
        return 1 if failed else 0
    finally:
        s3.shutdown()


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="s3_command", required=True, metavar="ACTION")
    cleanup = actions.add_parser(
        "cleanup",
        help="abort stale multipart uploads under a prefix",
        description="abort the multipart uploads a crash left behind under a prefix",
    )
    cleanup.add_argument(
        "--store",
        required=True,
        metavar="s3://BUCKET/PREFIX",
        help="bucket and prefix (endpoint and credentials from the AWS variables)",
    )
    cleanup.add_argument(
        "--older-than",
        type=_duration,
        default=parse_duration("24h"),
        metavar="DURATION",
        help="only uploads started longer ago than this: 30m, 24h, 2d (default 24h)",
    )
    cleanup.add_argument("--dry-run", action="store_true", help="list the stale uploads, abort nothing")
    cleanup.set_defaults(run=run_cleanup)
