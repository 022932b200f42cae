"""Start and stop a single-node OpenStack Swift with the ``s3api`` middleware.

Four servers (account, container, object, proxy), each one process
(``workers = 0``) on a free loopback port, with their data, configs, rings
and logs in a directory the caller gives. Swift only imports under Debian's
``/usr/bin/python3``, so each server runs ``swift_launch.py`` there; this
module (run by the project's interpreter) writes the configs, starts the
processes, waits for a signed ``ListBuckets`` to answer 200, and stops them by
PID (terminate, wait, kill). The facts it relies on are in
``/work/shared/OBJECT_STORE.md`` and ``docs/s3.md``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ACCESS_KEY",
    "SECRET_KEY",
    "REGION",
    "SERVERS",
    "SWIFT_PYTHON",
    "SwiftError",
    "SwiftStore",
    "check_prerequisites",
]

SWIFT_PYTHON = "/usr/bin/python3"
LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "swift_launch.py")
ACCESS_KEY = "test:tester"
SECRET_KEY = "testing"
REGION = "us-east-1"
SERVERS = ("account", "container", "object", "proxy")
INSTALL_HINT = (
    "install Debian's Swift packages: apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
    "apt-get install -y -qq --no-install-recommends swift swift-proxy swift-object swift-container swift-account"
)


_PROBE = (
    "import importlib.util, sys; "
    "missing = [m for m in ('swift.common.middleware.s3api', 'swift.proxy.server', 'swift.obj.server', "
    "'swift.account.server', 'swift.container.server') if importlib.util.find_spec(m) is None]; "
    "sys.exit(f'missing: {missing}' if missing else 0)"
)


class SwiftError(RuntimeError):
    """Swift is missing, cannot run here, or did not come up in time."""


def create_bucket(client: Any, name: str, timeout: float = 60.0) -> None:
    """Create the bucket; a store that answers ListBuckets may still be starting
    its container server under load (503 "reduce your request rate"): retry
    that, with a deadline, and nothing else."""
    from botocore.exceptions import ClientError  # boto3 is the s3 extra: loaded only when used

    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        try:
            client.create_bucket(Bucket=name)
            return
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code != "ServiceUnavailable" or time.monotonic() > deadline:
                raise
        pause.wait(0.5)  # the store said it is busy: back off before asking again


def check_prerequisites(directory: str) -> None:
    """Raise :class:`SwiftError` saying what is missing: Swift's packages under
    ``/usr/bin/python3``, or ``user.*`` extended attributes on *directory*'s
    filesystem (Swift keeps object metadata there)."""
    if not os.path.exists(SWIFT_PYTHON) or shutil.which("swift-proxy-server") is None:
        raise SwiftError(f"OpenStack Swift is not installed; {INSTALL_HINT}")
    probe = subprocess.run(
        [SWIFT_PYTHON, "-I", "-c", _PROBE],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        raise SwiftError(
            f"{SWIFT_PYTHON} cannot import Swift's servers and s3api ({probe.stderr.strip()}); {INSTALL_HINT}"
        )
    path = os.path.join(directory, ".xattr-probe")
    with open(path, "wb"):
        pass
    try:
        os.setxattr(path, "user.liveupload", b"1")
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            raise SwiftError(
                f"the filesystem of {directory} has no user.* extended attributes, which Swift needs "
                "(tmpfs has them only on Linux >= 6.6; use a directory on ext4 or xfs)"
            ) from exc
        raise
    finally:
        os.unlink(path)


def _free_ports(n: int) -> list[int]:
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


_COMMON = """[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = 0
swift_dir = {conf}
devices = {devices}
mount_check = false
log_level = WARNING
log_name = {name}
"""

_STORAGE = (
    _COMMON
    + """
[pipeline:main]
pipeline = {name}-server

[app:{name}-server]
use = egg:swift#{name}
"""
)

_PROXY = (
    _COMMON
    + """
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo
    versioned_writes proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
error_suppression_interval = 0
conn_timeout = 1
node_timeout = 10

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:s3api]
use = egg:swift#s3api
max_upload_part_num = 10000
min_segment_size = 5242880

[filter:cache]
use = egg:swift#memcache
# Nothing listens there: every lookup misses, which tempauth is fine with.
memcache_servers = 127.0.0.1:{memcache_port}
set log_level = CRITICAL

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
"""
)

_SWIFT_CONF = """[swift-hash]
swift_hash_path_suffix = liveupload-tests
swift_hash_path_prefix = liveupload-tests

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
"""


@dataclass
class SwiftStore:
    """One single-node Swift under *root* (created if missing, never deleted here)."""

    root: str
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        """The S3 endpoint (the proxy), for path-style addressing."""
        return f"http://127.0.0.1:{self.ports['proxy']}"

    @property
    def conf_dir(self) -> str:
        return os.path.join(self.root, "etc")

    def log_path(self, server: str) -> str:
        return os.path.join(self.root, "log", f"{server}.log")

    def client_settings(self) -> dict:
        """Keyword arguments for ``boto3.client("s3", ...)`` / ``S3Writer``'s ``client``."""
        return {
            "endpoint_url": self.endpoint,
            "region_name": REGION,
            "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY,
        }

    # -- lifecycle ------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> None:
        """Write configs, build rings, start the four servers, wait until S3 answers."""
        os.makedirs(self.root, exist_ok=True)
        check_prerequisites(self.root)
        for sub in ("etc", "log"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        names = (*SERVERS, "memcache")
        self.ports = dict(zip(names, _free_ports(len(names)), strict=True))
        self._write_configs()
        rings = subprocess.run(
            [SWIFT_PYTHON, "-I", LAUNCHER, "rings", self.conf_dir, json.dumps(self.ports)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if rings.returncode != 0:
            raise SwiftError(f"building Swift's rings failed: {rings.stderr.strip()}")
        try:
            for server in SERVERS:
                self.start_server(server)
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _write_configs(self) -> None:
        with open(os.path.join(self.conf_dir, "swift.conf"), "w") as f:
            f.write(_SWIFT_CONF)
        for server in SERVERS:
            devices = os.path.join(self.root, "srv", server)
            os.makedirs(os.path.join(devices, "d0"), exist_ok=True)
            template = _PROXY if server == "proxy" else _STORAGE
            text = template.format(
                port=self.ports[server],
                conf=self.conf_dir,
                devices=devices,
                name=server,
                memcache_port=self.ports["memcache"],
            )
            with open(os.path.join(self.conf_dir, f"{server}-server.conf"), "w") as f:
                f.write(text)

    def start_server(self, server: str) -> None:
        """Start one server process (its output appended to ``log/<server>.log``).

        It stops by itself when the calling thread ends: call this from a thread
        that outlives the server (the main thread, in the tests)."""
        if server in self.procs and self.procs[server].poll() is None:
            raise SwiftError(f"the {server} server is already running")
        with open(self.log_path(server), "ab") as log:
            self.procs[server] = subprocess.Popen(
                [SWIFT_PYTHON, "-I", LAUNCHER, "serve", self.conf_dir, server, str(os.getpid())],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )

    def stop_server(self, server: str, *, kill: bool = False, timeout: float = 5.0) -> None:
        """Stop one server by PID: SIGKILL at once if *kill*, else SIGTERM, wait, SIGKILL."""
        proc = self.procs.pop(server, None)
        if proc is None or proc.poll() is not None:
            if proc is not None:
                proc.wait()
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
            try:
                proc.wait(timeout)
                return
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait(timeout)

    def restart_server(self, server: str, timeout: float = 15.0) -> None:
        """Start a stopped server again and wait until its port accepts connections."""
        self.start_server(server)
        self.wait_port(server, timeout)

    def stop(self) -> None:
        """Stop every server (proxy first), each by its PID."""
        for server in reversed(SERVERS):
            self.stop_server(server)

    # -- readiness --------------------------------------------------------------

    def wait_port(self, server: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive(server)
            try:
                socket.create_connection(("127.0.0.1", self.ports[server]), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise SwiftError(
                        f"the {server} server did not listen within {timeout} s; see {self.log_path(server)}"
                    ) from None
                time.sleep(0.05)  # polling a port that is not open yet: nothing to wait on

    def wait_ready(self, timeout: float) -> float:
        """Wait for a SigV4-signed ``ListBuckets`` to answer 200; the seconds it took."""
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        start = time.monotonic()
        deadline = start + timeout
        client = boto3.client(
            "s3",
            **self.client_settings(),
            config=Config(
                s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=5
            ),
        )
        try:
            last: Exception | None = None
            while time.monotonic() < deadline:
                for server in SERVERS:
                    self._check_alive(server)
                try:
                    client.list_buckets()
                    return time.monotonic() - start
                except (BotoCoreError, ClientError) as exc:
                    last = exc
                    time.sleep(0.1)  # the servers are still starting: nothing to wait on
            raise SwiftError(f"Swift's S3 API did not answer within {timeout} s ({last}); logs in {self.root}/log")
        finally:
            client.close()

    def _check_alive(self, server: str) -> None:
        proc = self.procs.get(server)
        if proc is not None and proc.poll() is not None:
            with open(self.log_path(server), errors="replace") as f:
                tail = f.read()[-2000:]
            raise SwiftError(f"the {server} server exited with {proc.returncode}:\n{tail}")
