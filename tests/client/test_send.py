"""``liveupload send`` and its Python API (``client.upload_files``)
end to end against the real server, and the default consume hook's file
naming (``server.storage``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from client import FileResult, ServerError, upload_files
from client.live_page import page_url
from server.app import create_app, serve_in_thread
from server.storage import SaveToDirectory, safe_filename
from tests.server.server_helpers import journal_writer
from writers import FaultyWriter, Journal

pytestmark = pytest.mark.timeout(30)

REPO = Path(__file__).resolve().parents[2]


def make_files(folder: Path, **sizes: int) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = []
    for name, size in sizes.items():
        path = folder / name.replace("_", ".")
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


def app_for(tmp_path: Path, **options: Any):
    config = {"accept": "any", "max_entries": 10, "max_file_size": 300_000, "chunk_size": 8_000, **options}
    return create_app(secret="t", uploads_dir=tmp_path / "uploads", upload_configs={"files": config})


def saved(tmp_path: Path) -> dict[str, bytes]:
    folder = tmp_path / "uploads"
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.is_dir() else {}


def send_cli(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", "--log-level", "warning", "send", "--url", url, *args],
        capture_output=True, text=True, timeout=25, env={**os.environ, "PYTHONPATH": str(REPO)},
    )


# --------------------------------------------------------------------- CLI


@pytest.mark.substrates("pool")  # the client is a child process; the server side runs on both elsewhere
def test_send_uploads_files_in_batches_and_exits_0(tmp_path):
    files = make_files(tmp_path / "in", big_bin=250_000, a_txt=10, b_txt=3_000)
    with serve_in_thread(app_for(tmp_path, max_entries=2)) as url:
        proc = send_cli(url + "/", *map(str, files), "--concurrency", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        "saved big.bin (250000 bytes)", "saved a.txt (10 bytes)", "saved b.txt (3000 bytes)"]
    assert saved(tmp_path) == {p.name: p.read_bytes() for p in files}
    assert "big.bin" in proc.stderr and "100%" in proc.stderr  # tqdm's bars


@pytest.mark.substrates("pool")
def test_send_exits_non_zero_when_any_file_fails(tmp_path):
    good, big = make_files(tmp_path / "in", good_bin=100, big_bin=300_001)
    with serve_in_thread(app_for(tmp_path)) as url:
        proc = send_cli(url + "/", str(good), str(big), str(tmp_path / "missing.bin"), "--no-progress")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "saved good.bin (100 bytes)"
    assert lines[1] == f"failed {big}: too_large"
    assert lines[2].startswith(f"failed {tmp_path / 'missing.bin'}: ")
    assert saved(tmp_path) == {"good.bin": good.read_bytes()}


@pytest.mark.substrates("pool")
def test_send_takes_the_socket_url_as_well_as_the_page_s(tmp_path):
    (path,) = make_files(tmp_path / "in", ws_bin=1_000)
    with serve_in_thread(app_for(tmp_path)) as url:
        proc = send_cli(url.replace("http://", "ws://") + "/live/websocket", str(path), "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["saved ws.bin (1000 bytes)"]


@pytest.mark.pure
@pytest.mark.parametrize(("url", "page"), [
    ("http://h:4000/", "http://h:4000/"),
    ("https://h/upload/", "https://h/upload/"),
    ("ws://h:4000/live/websocket", "http://h:4000/"),
    ("wss://h/live/websocket", "https://h/"),
    ("ws://h/upload/live/websocket/", "http://h/upload/"),
    ("ws://h/upload/live", "http://h/upload/"),
])
def test_page_url_maps_a_socket_address_to_its_page(url, page):
    assert page_url(url) == page


@pytest.mark.pure
@pytest.mark.parametrize("url", ["ftp://h/", "h:4000", "/live/websocket"])
def test_page_url_names_an_address_it_cannot_use(url):
    with pytest.raises(ServerError, match="neither a page"):
        page_url(url)


@pytest.mark.pure
def test_send_to_no_server_exits_2(tmp_path):
    (path,) = make_files(tmp_path / "in", x_bin=10)
    with serve_in_thread(app_for(tmp_path)) as url:
        pass  # the port is free again
    proc = send_cli(url + "/", str(path), "--no-progress", "--timeout", "5")
    assert proc.returncode == 2 and "cannot fetch" in proc.stderr


# --------------------------------------------------------------------- API


def test_upload_files_keeps_at_most_concurrency_uploads_in_flight(tmp_path):
    journal = Journal()
    paths = make_files(tmp_path / "in", **{f"f{i}_bin": 20_000 + i for i in range(6)})
    progress: dict[str, list[int]] = {}

    def on_progress(result: FileResult) -> None:
        progress.setdefault(result.name, []).append(result.sent)

    with serve_in_thread(app_for(tmp_path, chunk_size=1_000, writer=journal_writer(journal))) as url:
        results = upload_files(url + "/", paths, concurrency=3, on_progress=on_progress)
    assert [r.saved_as for r in results] == [f"f{i}.bin ({20_000 + i} bytes)" for i in range(6)]
    assert all(r.ok and r.error is None for r in results)
    open_writers = peak = 0
    for item in journal.items():
        if item[0] == "init":
            open_writers += 1
            peak = max(peak, open_writers)
        elif item[0] == "close":
            open_writers -= 1
    assert peak == 3
    for name, sent in progress.items():
        assert sent == sorted(sent) and sent[-1] == int(name[1:2]) + 20_000
    assert saved(tmp_path) == {p.name: p.read_bytes() for p in paths}


def test_upload_files_reports_a_writer_error_and_saves_the_rest(tmp_path):
    def writer(name, entry, session):
        if entry["client_name"] == "bad.bin":
            return (FaultyWriter, {"fault": "error", "at_chunk": 2, "reason": "disk full"})
        return (FaultyWriter, {})

    def consume(name, meta, entry):
        return {"name": entry["client_name"], "size": len(meta["data"])}

    paths = make_files(tmp_path / "in", bad_bin=5_000, good_bin=5_000)
    app = create_app(secret="t", consume=consume,
                     upload_configs={"files": {"accept": "any", "max_entries": 5, "chunk_size": 1_000, "writer": writer}})
    with serve_in_thread(app) as url:
        bad, good = upload_files(url + "/", paths)
    assert not bad.ok and bad.error == "writer_error" and bad.sent == 1_000
    assert good.ok and good.saved_as == "good.bin (5000 bytes)"


def test_upload_files_names_on_the_page_and_a_missing_server(tmp_path):
    (path,) = make_files(tmp_path / "in", x_bin=10)
    with serve_in_thread(app_for(tmp_path)) as url:
        with pytest.raises(ServerError, match="no file input 'nope'"):
            upload_files(url + "/", [path], upload="nope")
        (empty,) = upload_files(url + "/", [make_empty(tmp_path)])
    assert not empty.ok and "empty file" in (empty.error or "")
    with pytest.raises(ServerError, match="cannot fetch"):
        upload_files(url + "/", [path], timeout=5)


def make_empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    return path


# ------------------------------------------------------------------- saving


@pytest.mark.parametrize("name, expected", [
    ("cat.png", "cat.png"),
    ("../../etc/passwd", "passwd"),
    ("..\\..\\boot.ini", "boot.ini"),
    ("..", "upload"),
    ("", "upload"),
    ("  .hidden  ", "hidden"),
    ("a\x00b\nc.txt", "a_b_c.txt"),
    ('what?<is>"this"|*.txt', "what__is__this___.txt"),
    ("CON.txt", "_CON.txt"),
    ("é" * 300 + ".jpeg", "é" * 97 + ".jpeg"),
])
@pytest.mark.pure
def test_safe_filename(name, expected):
    assert safe_filename(name) == expected


@pytest.mark.pure
def test_saving_never_overwrites_and_stays_in_its_folder(tmp_path):
    source = tmp_path / "source"
    source.write_bytes(b"data")
    save = SaveToDirectory(tmp_path / "out")
    names = [save("files", {"path": str(source)}, {"client_name": name})["name"]
             for name in ("../x.txt", "x.txt", "/abs/x.txt", "report")]
    assert names == ["x.txt", "x (1).txt", "x (2).txt", "report"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "source"]
    assert save("files", {"data": b"mem"}, {"client_name": "m.bin"})["size"] == 3
    failed = save("files", {"path": str(tmp_path / "gone")}, {"client_name": "gone.bin"})
    assert failed["error"] and failed["size"] == 0
    assert not (tmp_path / "out" / "gone.bin").exists()


# ---------------------------------------------------------------- embedding


def test_mounted_under_a_prefix_in_a_starlette_app(tmp_path):
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    uploads = app_for(tmp_path)
    parent = Starlette(routes=[
        Route("/", lambda request: PlainTextResponse("the host app")),
        Mount("/upload", app=uploads),
    ])
    (path,) = make_files(tmp_path / "in", mounted_bin=12_345)
    with serve_in_thread(parent, ws_max_size=uploads.state.max_message_size) as url:
        import httpx

        page = httpx.get(url + "/upload/", trust_env=False).text
        assert 'src="/upload/assets/phoenix.min.js"' in page
        assert 'new LiveView.LiveSocket("/upload/live"' in page
        (result,) = upload_files(url + "/upload/", [path])
    assert result.ok and result.saved_as == "mounted.bin (12345 bytes)"
    assert saved(tmp_path) == {"mounted.bin": path.read_bytes()}
