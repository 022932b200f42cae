"""Runs under Debian's ``/usr/bin/python3`` (the only interpreter that imports Swift).

``swift_launch.py rings CONF_DIR PORTS_JSON``: build the account, container and
object rings (one replica, one device each) in one process.

``swift_launch.py serve CONF_DIR SERVER PARENT_PID``: run one Swift server
(``account``, ``container``, ``object`` or ``proxy``) with ``CONF_DIR/swift.conf``
instead of ``/etc/swift/swift.conf``, in this process (``workers = 0``: its PID is
the server). It gets SIGTERM when the thread that started it ends (the test
process dying, even by SIGKILL, takes its servers along).

Kept free of project imports: it runs outside the project's interpreter.
"""

import json
import os
import sys


def build_rings(conf_dir, ports):
    from swift.common.ring import RingBuilder

    for kind in ("account", "container", "object"):
        builder = RingBuilder(part_power=6, replicas=1, min_part_hours=1)
        builder.add_dev(
            {
                "id": 0,
                "region": 1,
                "zone": 1,
                "ip": "127.0.0.1",
                "port": ports[kind],
                "device": "d0",
                "weight": 100,
                "meta": "",
            }
        )
        builder.rebalance()
        builder.get_ring().save(os.path.join(conf_dir, f"{kind}.ring.gz"))


def die_with_parent(parent_pid):
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before the prctl
        sys.exit(1)


def serve(conf_dir, server):
    from swift.common import constraints, storage_policy, utils
    from swift.common.wsgi import run_wsgi

    utils.set_swift_dir(conf_dir)
    constraints.reload_constraints()
    storage_policy.reload_storage_policies()
    conf_path = os.path.join(conf_dir, f"{server}-server.conf")
    options = {"verbose": True}
    if server == "object":
        from swift.obj import server as obj_server

        options["global_conf_callback"] = obj_server.global_conf_callback
    return run_wsgi(conf_path, f"{server}-server", **options)


def main(argv):
    command, conf_dir = argv[1], argv[2]
    if command == "rings":
        build_rings(conf_dir, json.loads(argv[3]))
        return 0
    if command == "serve":
        die_with_parent(int(argv[4]))
        return serve(conf_dir, argv[3])
    print(f"unknown command {command!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
