"""The test store's launcher says clearly what is missing instead of skipping."""

from __future__ import annotations

import pytest

from benchmarks.objectstore import swift_store

pytestmark = [pytest.mark.timeout(30), pytest.mark.pure]


def test_a_missing_swift_is_an_error_naming_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(swift_store, "SWIFT_PYTHON", str(tmp_path / "no-python"))
    with pytest.raises(swift_store.SwiftError, match="apt-get install .*swift-proxy"):
        swift_store.check_prerequisites(str(tmp_path))


def test_every_server_runs_as_one_process_of_its_own(s3):
    """``workers = 0``: the PID the store holds is the server (the kill/restart
    of the object server is exercised by the writer's fault test)."""
    assert {name: proc.poll() for name, proc in s3.swift.procs.items()} == dict.fromkeys(swift_store.SERVERS)
    assert len({proc.pid for proc in s3.swift.procs.values()}) == len(swift_store.SERVERS)
    s3.client.put_object(Bucket=s3.bucket, Key=f"{s3.prefix}/x", Body=b"x")
    assert s3.read(f"{s3.prefix}/x") == b"x"
