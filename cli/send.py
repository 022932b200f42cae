"""``liveupload send FILE... [--url URL] [--concurrency N]``: upload files to a
liveupload server over LiveView's upload protocol (:mod:`client.upload`).

Draws one tqdm progress bar per file on stderr, prints one summary line per
file on stdout (``saved <name> (<size> bytes)`` or ``failed <file>: <why>``),
and exits 0 only if every file was uploaded and saved (1 if any failed, 2 if
the server could not be used at all).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tqdm import tqdm

from client import FileResult, ServerError, upload_files

__all__ = ["configure", "run"]


class Bars:
    """One bar per file, keyed by path; closed when the file's outcome is known."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict[str, Any] = {}
        self.position = 0

    def __call__(self, result: FileResult) -> None:
        if not self.enabled:
            return
        bar = self.bars.get(result.path)
        if bar is None:
            bar = tqdm(total=result.size, desc=result.name, unit="B", unit_scale=True,
                       unit_divisor=1024, position=self.position, leave=True, file=sys.stderr)
            self.position += 1
            self.bars[result.path] = bar
        bar.update(result.sent - bar.n)
        if result.error is not None:
            bar.set_postfix_str("failed", refresh=True)
        elif result.saved_as is not None:
            bar.set_postfix_str("saved", refresh=True)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def run(args: argparse.Namespace) -> int:
    bars = Bars(enabled=not args.no_progress)
    try:
        results = upload_files(args.url, args.files, concurrency=args.concurrency,
                               upload=args.upload, on_progress=bars, timeout=args.timeout)
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        bars.close()
    for result in results:
        if result.ok and result.saved_as is not None:
            print(f"saved {result.saved_as}")
        else:
            print(f"failed {result.path}: {result.error or 'unknown error'}")
    return 0 if all(r.ok and r.saved_as is not None for r in results) else 1


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="files to upload")
    parser.add_argument("--url", default="http://127.0.0.1:4000/",
                        help="the upload page, or its socket ws://HOST/live/websocket (default http://127.0.0.1:4000/)")
    parser.add_argument("--concurrency", type=_positive, default=4, help="files uploaded at once (default 4)")
    parser.add_argument("--upload", default=None, help="the file input's name, if the page has several")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a reply (default 30)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
