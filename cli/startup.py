"""What ``liveupload serve`` checks and says before it serves: Phoenix's
scripts are installed, the port can be listened on, and then, in plain words
on stderr, the address to open and what a missing secret means.

Each check returns the lines to print and an exit status instead of raising,
so a newcomer reads a sentence and a command, not a traceback.
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path

from server.app import INSTALL_COMMAND, missing_assets

__all__ = ["CANNOT_START", "REPO_ROOT", "Refusal", "check_scripts", "first_lines", "listen", "url_for"]

#: The exit status when ``serve`` cannot start (scripts missing, port taken).
CANNOT_START = 1

#: The repository root, where ``npm ci`` installs ``node_modules``.
REPO_ROOT = Path(__file__).resolve().parent.parent


class Refusal(Exception):
    """``serve`` cannot start; ``str(self)`` says why and what to do."""


def check_scripts(node_modules: Path) -> None:
    """Raise :class:`Refusal` with the command that installs Phoenix's scripts
    if any is missing: without them the page would look normal but be dead."""
    missing = missing_assets(node_modules)
    if missing:
        raise Refusal(
            f"liveupload: Phoenix's scripts are not installed (looked for {missing[0]}).\n"
            "Without them the page cannot upload. Install them from the repository root:\n"
            f"    cd {REPO_ROOT} && {INSTALL_COMMAND}\n"
            "(or point $LIVEUPLOAD_NODE_MODULES at a node_modules folder with phoenix and phoenix_live_view)"
        )


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` (``port`` 0: any free one), handed to
    uvicorn; a port in use or not allowed raises :class:`Refusal` saying which."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP. Without it,
    # a progress reply and the chunk reply written back to back wait on Nagle for the client's delayed
    # ACK (tens of ms per chunk when the client pushes progress without waiting, as Phoenix's does).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart need not wait
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        where = f"port {port} on {host}"
        if exc.errno == errno.EADDRINUSE:
            raise Refusal(f"liveupload: {where} is already in use (is another server running?).\n"
                          "Choose another with --port N, or --port 0 for any free port.") from None
        if exc.errno == errno.EACCES:
            raise Refusal(f"liveupload: {where} needs privileges this user lacks.\n"
                          "Choose a port above 1023 with --port N, or --port 0 for any free port.") from None
        raise Refusal(f"liveupload: cannot listen on {where}: {exc.strerror or exc}.\n"
                      "Check --host, or choose another port with --port N (0 for any free port).") from None
    sock.set_inheritable(True)
    return sock


def url_for(sock: socket.socket) -> str:
    """The page's address for a listening socket."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def first_lines(url: str, *, secret_source: str) -> list[str]:
    """What ``serve`` says first: where to open the page, and what no secret means."""
    lines = [f"liveupload: open {url} (Ctrl-C to stop)"]
    if secret_source == "random":
        lines.append("No --secret set: open pages will reload empty after a restart and say which files "
                     "were lost (set LIVEUPLOAD_SECRET to keep them joined).")
    return lines
