"""The upload page in a real browser: headless Chromium (Debian's packages)
driven by Selenium, Phoenix's own LiveView client, the real server. Files are
picked through the real ``<input type="file">``; everything waits on the page
with a deadline (WebDriverWait), never a sleep."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app, serve_in_thread
from server.page import CONNECTION_LOST, LOST_WORK
from tests.e2e.browser import browser, connected, css, texts, wait_for  # noqa: F401 - browser is a fixture
from tests.server.server_helpers import journal_writer, wait_released
from writers import FaultyWriter, Journal

pytestmark = [pytest.mark.timeout(90), pytest.mark.substrates("pool")]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
CONFIG = {"accept": "any", "max_entries": 5, "max_file_size": 50_000, "chunk_size": 2_000}


def real_app(tmp_path: Path, **options: Any):
    return create_app(secret="browser-test-secret", uploads_dir=tmp_path / "uploads",
                      upload_configs={"files": {**CONFIG, **options}})


def make_files(folder: Path, *specs: tuple[str, int]) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = []
    for name, size in specs:
        path = folder / name
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


def saved(tmp_path: Path) -> dict[str, bytes]:
    folder = tmp_path / "uploads"
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.is_dir() else {}


def failing_on(name: str, fault: str, journal: Journal) -> Any:
    """A writer factory: ``name`` gets a ``FaultyWriter`` that fails (``fault``)
    at its second chunk with "disk on fire"; every other file a journalled one."""
    good_writer = journal_writer(journal)

    def writer(upload: str, entry: dict, session: Any) -> Any:
        if entry["client_name"] == name:
            return (FaultyWriter, {"fault": fault, "at_chunk": 2, "reason": "disk on fire"})
        return good_writer(upload, entry, session)

    return writer


def open_page(driver: Any, url: str) -> None:
    driver.get(url + "/")
    wait_for(driver, connected, what="the LiveView to connect")


def pick(driver: Any, paths: list[Path]) -> None:
    """Choose files through the real file input, as a person would."""
    (file_input,) = css(driver, 'input[type="file"]')
    file_input.send_keys("\n".join(str(p) for p in paths))


def entry_states(driver: Any) -> dict[str, str]:
    return driver.execute_script(
        "var out = {}; document.querySelectorAll('li.entry').forEach(function (li) {"
        " out[li.querySelector('.name').textContent] = li.dataset.state; }); return out;"
    )


def submit(driver: Any) -> None:
    css(driver, 'button[type="submit"]')[0].click()


# -------------------------------------------------------------------- tests


def test_the_page_states_its_options_and_is_labelled(browser, tmp_path):
    app = real_app(tmp_path, accept=[".bin", "text/*"], auto_upload=True)
    with serve_in_thread(app) as url:
        open_page(browser, url)
        options = " ".join(texts(browser, "dl.options"))
        for words in (".bin, text/*", "up to 5", "48.8 KB", "2.0 KB", "as soon as files are chosen"):
            assert words in options
        exact = browser.execute_script(
            "return Array.from(document.querySelectorAll('dl.options .size')).map(s => [s.title, s.dataset.bytes])")
        assert exact == [["50000 bytes", "50000"], ["2000 bytes", "2000"]]  # the exact bytes, on hover
        (file_input,) = css(browser, 'input[type="file"]')
        labels = browser.execute_script("return Array.from(arguments[0].labels).map(l => l.textContent)", file_input)
        assert labels == ["Choose files"]
        drop = css(browser, "[phx-drop-target]")
        assert drop and drop[0].get_attribute("phx-drop-target") == file_input.get_attribute("id")
        # A file of a type not accepted is refused in words naming the accepted types.
        pick(browser, make_files(tmp_path / "picked", ("cat.png", 10)))
        wait_for(browser, lambda d: texts(d, "li.entry .error") == ["not_accepted"], what="not_accepted")
        assert texts(browser, "li.entry .why") == [": this type of file is not accepted (accepted: .bin, text/*)"]
        assert entry_states(browser) == {"cat.png": "error"}
    assert saved(tmp_path) == {}


def test_pick_several_files_and_upload_them(browser, tmp_path):
    app = real_app(tmp_path)
    files = make_files(tmp_path / "picked", ("a.bin", 12_345), ("b.txt", 2_000), ("c.dat", 1))
    with serve_in_thread(app) as url:
        open_page(browser, url)
        pick(browser, files)
        wait_for(browser, lambda d: len(css(d, "li.entry")) == 3, what="three entries")
        assert texts(browser, "li.entry .size") == ["12.1 KB", "2.0 KB", "1 byte"]
        sizes = browser.execute_script(
            "return Array.from(document.querySelectorAll('li.entry .size')).map(s => s.title)")
        assert sizes == ["12345 bytes", "2000 bytes", "1 byte"]  # the exact size, on hover
        # Each progress bar is labelled for assistive technology.
        bars = browser.execute_script(
            "return Array.from(document.querySelectorAll('li.entry progress'))"
            ".map(p => [p.labels[0].querySelector('.sr-only').textContent, p.value, p.max])")
        assert bars == [["upload progress of a.bin", 0, 100], ["upload progress of b.txt", 0, 100],
                        ["upload progress of c.dat", 0, 100]]
        submit(browser)
        wait_for(browser, lambda d: len(css(d, "#saved li")) == 3, what="three saved files")
        assert texts(browser, "#saved li") == ["a.bin (12.1 KB)", "b.txt (2.0 KB)", "c.dat (1 byte)"]
        # The saved list is labelled by its heading, and the page has its own icon.
        label = browser.execute_script(
            "return document.getElementById(document.getElementById('saved').getAttribute('aria-labelledby'))"
            ".textContent")
        assert label == "Saved files"
        icon = browser.execute_script("return document.querySelector('link[rel=icon]').href")
        assert icon.startswith("data:image/svg+xml,")
        assert texts(browser, "#notice") == ["saved 3 file(s)"]
        assert css(browser, "li.entry") == []
    assert saved(tmp_path) == {p.name: p.read_bytes() for p in files}


def test_files_dropped_on_the_drop_zone_are_uploaded(browser, tmp_path):
    # Selenium cannot drag from the desktop: the drop event a drag would deliver
    # is built in the page (a DataTransfer holding File objects) and dispatched
    # on the drop zone, where LiveView's own listener takes it.
    app = real_app(tmp_path)
    with serve_in_thread(app) as url:
        open_page(browser, url)
        browser.execute_script("""
            var zone = document.querySelector('[phx-drop-target]');
            var data = new DataTransfer();
            data.items.add(new File(['dropped bytes'], 'dropped.txt', {type: 'text/plain'}));
            zone.dispatchEvent(new DragEvent('dragenter', {bubbles: true, dataTransfer: data}));
            zone.dispatchEvent(new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: data}));
        """)
        wait_for(browser, lambda d: texts(d, "li.entry .name") == ["dropped.txt"], what="the dropped entry")
        submit(browser)
        wait_for(browser, lambda d: texts(d, "#saved li") == ["dropped.txt (13 bytes)"], what="dropped.txt saved")
    assert saved(tmp_path) == {"dropped.txt": b"dropped bytes"}


def test_a_file_over_the_limit_shows_its_error_and_writes_nothing(browser, tmp_path):
    app = real_app(tmp_path)
    files = make_files(tmp_path / "picked", ("huge.bin", CONFIG["max_file_size"] + 1))
    with serve_in_thread(app) as url:
        open_page(browser, url)
        pick(browser, files)
        wait_for(browser, lambda d: texts(d, "li.entry .error") == ["too_large"], what="too_large")
        assert texts(browser, "li.entry .why") == [": the file is larger than the 48.8 KB (50000 bytes) limit"]
        assert entry_states(browser) == {"huge.bin": "error"}
        submit(browser)  # LiveView's client refuses to submit while an entry has errors
        assert css(browser, "#saved li") == []
    assert saved(tmp_path) == {}


def test_too_many_files_is_shown_in_words(browser, tmp_path):
    app = real_app(tmp_path, max_entries=2)
    files = make_files(tmp_path / "picked", ("1.bin", 10), ("2.bin", 10), ("3.bin", 10))
    with serve_in_thread(app) as url:
        open_page(browser, url)
        pick(browser, files)
        wait_for(browser, lambda d: texts(d, ".upload-errors li") == ["too_many_files"], what="too_many_files")
        assert texts(browser, ".upload-errors-box .why") == [
            "more than 2 file(s) chosen: cancel the ones marked over the limit"]
        assert browser.execute_script(
            "return Array.from(document.querySelectorAll('li.entry[data-over-limit] .name')).map(n => n.textContent)"
        ) == ["3.bin"]
    assert saved(tmp_path) == {}


def test_cancel_in_the_middle_of_a_large_upload(browser, tmp_path):
    journal = Journal()
    size = 3_000_000
    app = real_app(tmp_path, max_file_size=size, chunk_size=1_000, auto_upload=True,
                   writer=journal_writer(journal))
    files = make_files(tmp_path / "picked", ("long.bin", size))
    with serve_in_thread(app) as url:
        open_page(browser, url)
        pick(browser, files)
        wait_for(browser, lambda d: entry_states(d).get("long.bin") == "uploading", what="uploading")
        cancel = css(browser, "li.entry button.cancel")[0]
        assert cancel.get_attribute("aria-label") == "cancel long.bin"
        cancel.click()
        wait_for(browser, lambda d: css(d, "li.entry") == [], what="the entry to disappear")
        wait_released(journal, "long.bin")
    assert journal.closes("long.bin") == ["cancel"]
    [(_, _, path)] = [item for item in journal.items() if item[0] == "path"]
    assert not os.path.exists(path)
    assert saved(tmp_path) == {}


def test_a_finished_upload_removed_before_saving_is_not_saved(browser, tmp_path):
    journal = Journal()
    app = real_app(tmp_path, auto_upload=True, writer=journal_writer(journal))
    files = make_files(tmp_path / "picked", ("keep.bin", 5_000), ("drop.bin", 5_000))
    with serve_in_thread(app) as url:
        open_page(browser, url)
        pick(browser, files)
        wait_for(browser, lambda d: entry_states(d) == {"keep.bin": "done", "drop.bin": "done"}, what="both done")
        css(browser, 'button.cancel[aria-label="cancel drop.bin"]')[0].click()
        wait_for(browser, lambda d: list(entry_states(d)) == ["keep.bin"], what="drop.bin to go")
        wait_released(journal, "drop.bin")
        submit(browser)
        wait_for(browser, lambda d: texts(d, "#saved li") == ["keep.bin (4.9 KB)"], what="keep.bin saved")
    # Its writer had closed with "done" when the last byte came; removing it released the file.
    assert journal.closes("drop.bin") == ["done"]
    [path] = [item[2] for item in journal.items() if item[:2] == ("path", "drop.bin")]
    assert not os.path.exists(path)
    assert saved(tmp_path) == {"keep.bin": files[0].read_bytes()}


def test_a_writer_failure_shows_its_error_while_a_sibling_completes(browser, tmp_path):
    journal = Journal()
    app = real_app(tmp_path, auto_upload=True, writer=failing_on("bad.bin", "error", journal))
    files = make_files(tmp_path / "picked", ("good.bin", 9_000), ("bad.bin", 9_000))
    with serve_in_thread(app) as url:
        open_page(browser, url)
        pick(browser, files)
        wait_for(browser, lambda d: entry_states(d) == {"good.bin": "done", "bad.bin": "error"},
                 what="one done, one failed")
        assert texts(browser, "li.entry .error") == ["writer_failure: disk on fire"]
        assert texts(browser, "li.entry .why") == [": the server could not write the file (disk on fire)"]
        # Cancel the failed entry by keyboard, then save the other.
        from selenium.webdriver.common.keys import Keys
        css(browser, 'li.entry[data-state="error"] button.cancel')[0].send_keys(Keys.ENTER)
        wait_for(browser, lambda d: list(entry_states(d)) == ["good.bin"], what="the failed entry to go")
        submit(browser)
        wait_for(browser, lambda d: texts(d, "#saved li") == ["good.bin (8.8 KB)"], what="good.bin saved")
    assert saved(tmp_path) == {"good.bin": files[0].read_bytes()}


def test_a_writer_that_raises_shows_its_entry_failed_while_a_sibling_completes(browser, tmp_path, logs):
    """A writer that raises crashes its upload channel; the session marks the
    entry cancelled with the crash as its error. The page keeps it, failed,
    with the error in words and a dismiss button, out of the input's active
    refs (so the client does not hold the submit for it): the sibling uploads
    and is saved, and dismissing removes the failed entry through the session."""
    journal = Journal()
    app = real_app(tmp_path, auto_upload=True, writer=failing_on("bad.bin", "raise", journal))
    files = make_files(tmp_path / "picked", ("good.bin", 9_000), ("bad.bin", 9_000))
    why = ": the server could not write the file: its upload crashed (disk on fire at chunk 2)"
    with serve_in_thread(app) as url:
        open_page(browser, url)
        pick(browser, files)
        wait_for(browser, lambda d: entry_states(d) == {"good.bin": "done", "bad.bin": "error"}
                 and texts(d, "li.entry .why") == [why], what="one done, one failed with its error")
        assert texts(browser, "li.entry .error") == ["channel_crash: disk on fire at chunk 2"]
        (file_input,) = css(browser, 'input[type="file"]')
        good_ref = css(browser, 'li.entry[data-state="done"]')[0].get_attribute("data-ref")
        assert file_input.get_attribute("data-phx-active-refs") == good_ref
        assert file_input.get_attribute("data-phx-error-refs") == ""
        # The failed entry does not hold the submit: the sibling is saved.
        submit(browser)
        wait_for(browser, lambda d: texts(d, "#saved li") == ["good.bin (8.8 KB)"], what="good.bin saved")
        assert texts(browser, "#notice") == ["saved 1 file(s)"]
        assert entry_states(browser) == {"bad.bin": "error"}  # still shown until dismissed
        dismiss = css(browser, 'li.entry[data-state="error"] button.cancel')[0]
        assert dismiss.text == "dismiss" and dismiss.get_attribute("aria-label") == "dismiss bad.bin"
        dismiss.click()
        wait_for(browser, lambda d: css(d, "li.entry") == [], what="the failed entry to go")
        wait_released(journal, "good.bin")
    assert saved(tmp_path) == {"good.bin": files[0].read_bytes()}
    assert journal.closes("good.bin") == ["done"]
    # LiveView's client reported the crash with the phx_error payload itself
    # ({"error": {"reason": "channel_crash"}}): taken, not refused as malformed.
    events = [e["event"] for e in logs]
    assert "lvu.upload_crashed" in events and "lv.entry_cancelled" in events
    assert "lv.bad_progress" not in events and "lv.session_crashed" not in events


def accessible_texts(driver: Any) -> dict[str, list[str]]:
    """What assistive technology is given, from Chromium's accessibility tree:
    the text under every ``alert`` and every other text, each once."""
    nodes = driver.execute_cdp_cmd("Accessibility.getFullAXTree", {})["nodes"]
    by_id = {node["nodeId"]: node for node in nodes}

    def name(node: dict) -> str:
        return str(node.get("name", {}).get("value", ""))

    def text_under(node: dict) -> str:
        if node.get("role", {}).get("value") == "StaticText":
            return name(node)
        return "".join(text_under(by_id[c]) for c in node.get("childIds", ()) if c in by_id)

    live = [n for n in nodes if not n.get("ignored")]
    return {
        "alerts": [text_under(n) for n in live if n.get("role", {}).get("value") == "alert"],
        "texts": [name(n) for n in live if n.get("role", {}).get("value") == "StaticText"],
    }


def test_the_server_stopped_and_restarted_while_the_page_is_open(browser, tmp_path):
    journal = Journal()
    size = 3_000_000
    files = make_files(tmp_path / "picked", ("long.bin", size))
    app = real_app(tmp_path, max_file_size=size, chunk_size=1_000, auto_upload=True,
                   writer=journal_writer(journal))
    with serve_in_thread(app) as url:
        port = int(url.rsplit(":", 1)[1])
        open_page(browser, url)
        pick(browser, files)
        wait_for(browser, lambda d: entry_states(d).get("long.bin") == "uploading", what="uploading")
    # The server stopped mid-upload: its writer was closed with "cancel", and the
    # page says the connection is lost and marks the upload failed, not frozen.
    wait_released(journal, "long.bin")
    assert journal.closes("long.bin") == ["cancel"]
    wait_for(browser, lambda d: css(d, "#connection-lost")[0].is_displayed(), what="the lost-connection banner")
    assert texts(browser, "#connection-lost") == [CONNECTION_LOST]
    (mark,) = css(browser, "li.entry[data-state=uploading] .lost")
    assert mark.is_displayed() and mark.text == "failed"
    # Assistive technology gets both: the alert's text, and "failed" on the entry.
    heard = accessible_texts(browser)
    assert CONNECTION_LOST in heard["alerts"], heard
    assert any(text.strip() == "failed" for text in heard["texts"]), heard
    with serve_in_thread(real_app(tmp_path), port=port):
        wait_for(browser, connected, timeout=30, what="LiveView to rejoin the restarted server")
        wait_for(browser, lambda d: not css(d, "#connection-lost")[0].is_displayed(), what="banner gone")
        assert texts(browser, "#connection-lost") == [""]
        # The lost upload is said in the warning at the top (the page's script saw it listed).
        wait_for(browser, lambda d: texts(d, "#lost-work p") != [""], what="the lost-work warning")
        assert texts(browser, "#lost-work p") == [LOST_WORK.format(count="1 file", names="long.bin")]
        assert texts(browser, "#notice") == [""]
        assert css(browser, "li.entry") == []  # a fresh session: the lost upload is not shown as running
        # The page works again.
        more = make_files(tmp_path / "again", ("after.bin", 3_000))
        pick(browser, more)
        wait_for(browser, lambda d: len(css(d, "li.entry")) == 1, what="the new entry")
        submit(browser)
        wait_for(browser, lambda d: texts(d, "#saved li") == ["after.bin (2.9 KB)"], what="after.bin saved")
    assert saved(tmp_path) == {"after.bin": more[0].read_bytes()}


def test_without_a_fixed_secret_a_restart_reloads_the_page_empty(browser, tmp_path, monkeypatch):
    """Two processes with random secrets (``liveupload serve`` without
    ``--secret`` or ``$LIVEUPLOAD_SECRET``): the new one refuses the old page's
    session, so LiveView's client reloads the page, which starts empty; the
    page's script kept the names of the files listed but not saved and says
    them in the warning at the top."""
    monkeypatch.delenv("LIVEUPLOAD_SECRET", raising=False)

    def app():
        return create_app(uploads_dir=tmp_path / "uploads", upload_configs={"files": CONFIG})

    files = make_files(tmp_path / "picked", ("chosen.bin", 3_000))
    with serve_in_thread(app()) as url:
        port = int(url.rsplit(":", 1)[1])
        open_page(browser, url)
        pick(browser, files)
        wait_for(browser, lambda d: list(entry_states(d)) == ["chosen.bin"], what="the chosen file")
        browser.execute_script("window.beforeTheRestart = true;")
    wait_for(browser, lambda d: css(d, "#connection-lost")[0].is_displayed(), what="the lost-connection banner")
    with serve_in_thread(app(), port=port):
        wait_for(browser, lambda d: d.execute_script("return window.beforeTheRestart === undefined") and connected(d),
                 timeout=30, what="the page to reload and connect")
        assert css(browser, "li.entry") == [] and texts(browser, "#notice") == [""]
        assert texts(browser, "#connection-lost") == [""]
        assert texts(browser, "#lost-work p") == [LOST_WORK.format(count="1 file", names="chosen.bin")]
    assert saved(tmp_path) == {}


class DeclaredStall(FaultyWriter):
    """A stalling writer that says it blocks: its channel gets a thread of its
    own, so the stall holds neither the server's loop nor the other uploads."""

    blocking = True


def test_screenshots_idle_mid_upload_and_after(browser, tmp_path):
    """Writes docs/screenshots/{idle,uploading,uploaded}.png."""
    stall = threading.Event()

    def writer(name, entry, session):
        if entry["client_name"] == "holiday-video.mp4":
            return (DeclaredStall, {"fault": "stall", "at_chunk": 6, "stall_event": stall, "stall_seconds": 30})
        return (FaultyWriter, {})

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    app = real_app(tmp_path, max_file_size=100_000, chunk_size=4_000, auto_upload=True, writer=writer)
    files = make_files(tmp_path / "picked", ("holiday-video.mp4", 40_000), ("notes.txt", 1_200),
                       ("photo.jpg", 24_000))
    try:
        with serve_in_thread(app) as url:
            open_page(browser, url)
            browser.save_screenshot(str(SCREENSHOTS / "idle.png"))
            pick(browser, files)
            wait_for(browser, lambda d: entry_states(d) == {"holiday-video.mp4": "uploading", "notes.txt": "done",
                                                            "photo.jpg": "done"}, what="one upload in flight")
            wait_for(browser, lambda d: d.execute_script(
                "return document.querySelector('li.entry progress').value") >= 50, what="half way")
            browser.save_screenshot(str(SCREENSHOTS / "uploading.png"))
            stall.set()
            wait_for(browser, lambda d: set(entry_states(d).values()) == {"done"}, what="all done")
            submit(browser)
            wait_for(browser, lambda d: len(css(d, "#saved li")) == 3, what="three saved")
            browser.save_screenshot(str(SCREENSHOTS / "uploaded.png"))
    finally:
        stall.set()
    for name in ("idle", "uploading", "uploaded"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 1_000
