"""The page as a person uses it (issue 18), in headless Chromium against
``liveupload serve`` as shipped: a child process with no flags but its port
and folder, so uploads start on Upload, with the default limits. Phoenix's own
client runs unchanged; its latency simulator (``liveSocket.enableLatencySim``)
slows each chunk so that a person's click lands while a submit's uploads run.

Each state a person sees is checked by axe-core (npm, run in the same
Chromium) for WCAG 2.x A/AA, disabled controls' contrast included.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app, serve_in_thread
from server.page import CONNECTION_LOST, LOST_WORK
from tests.e2e.browser import WAIT, browser, connected, css, texts, wait_for  # noqa: F401 - browser is a fixture
from tests.e2e.test_browser import SCREENSHOTS, entry_states, make_files, open_page, pick, submit
from writers.tmpfile import TMPFILE_PREFIX

pytestmark = [pytest.mark.timeout(120), pytest.mark.substrates("pool")]

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"

#: Milliseconds LiveView's client waits before each message and chunk.
LATENCY_MS = 40


@contextmanager
def shipped_serve(tmp_path: Path, *, port: int = 0, secret: str | None = None) -> Iterator[str]:
    """``liveupload serve`` in a child process with the shipped defaults (only
    ``--port`` and ``--uploads-dir``; ``$LIVEUPLOAD_SECRET`` set to ``secret``
    or removed); yields its URL. Its log is read by a thread to the end, and
    SIGTERM stops it gracefully."""
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    env.pop("LIVEUPLOAD_SECRET", None)
    if secret:
        env["LIVEUPLOAD_SECRET"] = secret
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--port", str(port), "--uploads-dir", str(tmp_path / "uploads")],
        stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )
    listening = threading.Event()
    found: list[str] = []
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            match = re.search(r"serve\.listening.*?url=(\S+)", line)
            if match and not listening.is_set():
                found.append(match.group(1).rstrip("/"))
                listening.set()
        listening.set()

    reader = threading.Thread(target=read, name="serve log", daemon=True)
    reader.start()
    try:
        assert listening.wait(WAIT) and found, "serve never listened:\n" + "".join(lines)
        yield found[0]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(WAIT)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def saved_files(tmp_path: Path) -> dict[str, bytes]:
    folder = tmp_path / "uploads"
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.is_dir() else {}


def upload_temp_files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "tmp").glob(f"{TMPFILE_PREFIX}*"))


def slow_down(driver: Any) -> None:
    """Phoenix's own latency simulator: every message and chunk waits LATENCY_MS."""
    driver.execute_script(f"liveSocket.enableLatencySim({LATENCY_MS});")


def run_axe(driver: Any, state: str) -> None:
    """axe-core's WCAG 2.x A and AA rules on the whole document, then its own
    contrast computation on every disabled control (which the rules skip)."""
    assert AXE.is_file(), f"{AXE} is missing: run npm ci"
    if not driver.execute_script("return !!window.axe"):
        driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script("""
        var done = arguments[arguments.length - 1];
        axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']},
                           resultTypes: ['violations']})
          .then(function (r) { done(r.violations.map(function (v) {
              return v.id + ': ' + v.help + ' @ ' + v.nodes.map(function (n) { return n.target.join(' '); }).join(', ');
          })); })
          .catch(function (e) { done(['axe failed: ' + e]); });
    """)
    assert result == [], f"axe-core, {state}: {result}"
    low = driver.execute_script("""
        var color = axe.commons.color, out = [];
        axe.setup(document);
        document.querySelectorAll('button:disabled, input:disabled').forEach(function (el) {
          if (el.classList.contains('picker')) return;  // visually hidden: its label is the control
          var fg = color.getForegroundColor(el), bg = color.getBackgroundColor(el);
          var ratio = fg && bg ? color.getContrast(bg, fg) : 0;
          if (ratio < 4.5) out.push(el.outerHTML.slice(0, 80) + ' ' + ratio.toFixed(2));
        });
        axe.teardown();
        return out;
    """)
    assert low == [], f"disabled controls under 4.5:1, {state}: {low}"


def focused(driver: Any) -> str:
    return driver.execute_script(
        "var a = document.activeElement; return a ? (a.getAttribute('aria-label') || a.id || a.tagName) : '';")


# -------------------------------------------------------------------- tests


def test_cancel_while_a_submits_uploads_run_is_never_saved(browser, tmp_path):
    """Upload pressed, the form's controls disabled by Phoenix's client; the
    cancel buttons still work, by mouse on a file already at 100% (its temp
    file goes) and by keyboard on the big file still uploading (its upload
    stops, its temp file goes): neither is ever saved, and their sibling is."""
    from selenium.webdriver.common.keys import Keys

    files = make_files(tmp_path / "picked", ("keep.bin", 100_000), ("finished.bin", 50_000), ("big.bin", 7_900_000))
    with shipped_serve(tmp_path) as url:
        open_page(browser, url)
        run_axe(browser, "idle")
        slow_down(browser)
        pick(browser, files)
        wait_for(browser, lambda d: len(css(d, "li.entry")) == 3, what="three entries")
        assert texts(browser, ".selection") == ["3 files chosen"]
        submit(browser)
        wait_for(browser, lambda d: entry_states(d).get("big.bin") == "uploading"
                 and entry_states(d).get("finished.bin") == "done", what="big.bin uploading, finished.bin done")
        state = browser.execute_script(
            "return {submit: document.querySelector('button[type=submit]').disabled,"
            " label: document.querySelector('button[type=submit]').textContent,"
            " cancels: Array.from(document.querySelectorAll('li.entry button.cancel')).map(b => b.disabled)}")
        assert state == {"submit": True, "label": "Uploading…", "cancels": [False, False, False]}, state
        run_axe(browser, "uploading, submit in flight")
        css(browser, 'button.cancel[aria-label="cancel finished.bin"]')[0].click()
        wait_for(browser, lambda d: "finished.bin" not in entry_states(d), what="finished.bin to go")
        assert entry_states(browser).get("big.bin") == "uploading"
        cancel = css(browser, 'button.cancel[aria-label="cancel big.bin"]')[0]
        browser.execute_script("arguments[0].focus()", cancel)
        cancel.send_keys(Keys.ENTER)
        wait_for(browser, lambda d: "big.bin" not in entry_states(d), what="big.bin to go")
        wait_for(browser, lambda d: texts(d, "#saved li") == ["keep.bin (97.7 KB)"], what="keep.bin saved")
        assert texts(browser, "#notice") == ["saved 1 file(s)"]
        assert css(browser, "li.entry") == []
        run_axe(browser, "saved")
        assert upload_temp_files(tmp_path) == []
    assert saved_files(tmp_path) == {"keep.bin": files[0].read_bytes()}
    assert upload_temp_files(tmp_path) == []


def test_empty_files_are_said_skipped_and_too_many_files_sits_by_the_input(browser, tmp_path):
    """Eleven files over the shipped limit of ten, one of them empty: the empty
    one is said skipped next to the input (Phoenix's client never sends it),
    too_many_files sits right under the input, and the entry past the limit is
    marked; cancelling it clears the error, and the rest (the empty file
    excepted) is saved."""
    specs = [(f"f{i:02}.bin", 1_000 + i) for i in range(11)] + [("empty.txt", 0)]
    files = make_files(tmp_path / "picked", *specs)
    with shipped_serve(tmp_path) as url:
        open_page(browser, url)
        pick(browser, files)
        wait_for(browser, lambda d: texts(d, ".upload-errors li") == ["too_many_files"], what="too_many_files")
        assert texts(browser, "ul.skipped li") == ["empty.txt: skipped, the file is empty (0 bytes)"]
        assert texts(browser, ".selection") == ["11 files chosen: 1 over the limit of 10"]
        over = browser.execute_script(
            "return Array.from(document.querySelectorAll('li.entry[data-over-limit]'))"
            ".map(li => [li.querySelector('.name').textContent, li.querySelector('.over').textContent])")
        assert over == [["f10.bin", "over the limit of 10 files: cancel this one or another"]]
        # The error is right under the input (above the list), and the input is described by it.
        layout = browser.execute_script("""
            var zone = document.querySelector('.dropzone').getBoundingClientRect();
            var box = document.querySelector('.upload-errors-box').getBoundingClientRect();
            var first = document.querySelector('li.entry').getBoundingClientRect();
            return {gap: box.top - zone.bottom, above: box.bottom <= first.top, inView: box.bottom <= innerHeight,
                    describedBy: document.querySelector('input[type=file]').getAttribute('aria-describedby')};
        """)
        assert 0 <= layout["gap"] < 40 and layout["above"] and layout["inView"], layout
        assert layout["describedBy"].split()[1].endswith("-errors")
        run_axe(browser, "errors")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SCREENSHOTS / "errors.png"))
        css(browser, 'button.cancel[aria-label="cancel f10.bin"]')[0].click()
        wait_for(browser, lambda d: texts(d, ".upload-errors li") == [], what="the error to go")
        assert css(browser, "li.entry[data-over-limit]") == []
        submit(browser)
        wait_for(browser, lambda d: len(css(d, "#saved li")) == 10, what="ten saved")
        assert texts(browser, "ul.skipped li") == []  # said until the next Upload
    assert sorted(saved_files(tmp_path)) == [name for name, _ in specs[:10]]
    assert upload_temp_files(tmp_path) == []


def test_the_input_says_what_is_chosen_and_focus_follows_a_cancel(browser, tmp_path):
    from selenium.webdriver.common.keys import Keys

    files = make_files(tmp_path / "picked", ("a.bin", 10), ("b.bin", 20), ("c.bin", 30))
    with shipped_serve(tmp_path) as url:
        open_page(browser, url)
        labels = browser.execute_script(
            "return Array.from(document.querySelector('input[type=file]').labels).map(l => l.textContent)")
        assert labels == ["Choose files"]
        assert texts(browser, ".selection") == ["No files chosen"]
        pick(browser, files)
        wait_for(browser, lambda d: texts(d, ".selection") == ["3 files chosen"], what="three chosen")

        def cancel_by_keyboard(name: str) -> None:
            button = css(browser, f'button.cancel[aria-label="cancel {name}"]')[0]
            browser.execute_script("arguments[0].focus()", button)
            button.send_keys(Keys.ENTER)
            wait_for(browser, lambda d: name not in entry_states(d), what=f"{name} to go")

        cancel_by_keyboard("b.bin")  # the middle one: focus moves to the next entry's button
        wait_for(browser, lambda d: focused(d) == "cancel c.bin", what="focus on c.bin's cancel")
        cancel_by_keyboard("c.bin")  # the last one: to the previous entry's
        wait_for(browser, lambda d: focused(d) == "cancel a.bin", what="focus on a.bin's cancel")
        cancel_by_keyboard("a.bin")  # none left: to the file input
        input_id = css(browser, "input[type=file]")[0].get_attribute("id")
        wait_for(browser, lambda d: focused(d) == input_id, what="focus on the file input")
        assert texts(browser, ".selection") == ["No files chosen"]
    assert saved_files(tmp_path) == {}


@pytest.mark.parametrize("secret", ["a-fixed-secret", None], ids=["with-secret", "without-secret"])
def test_lost_work_is_said_at_the_top_after_a_restart(browser, tmp_path, secret):
    """The server stops while a submit's uploads run: the finished file shows
    "not saved" (not a green 100%), the other "failed". Restarted with the
    same secret the page rejoins; with a random one LiveView's client reloads
    it. Either way a warning at the top names the files that were lost."""
    files = make_files(tmp_path / "picked", ("small.bin", 2_000), ("large.bin", 7_900_000))
    with shipped_serve(tmp_path, secret=secret) as url:
        port = port_of(url)
        open_page(browser, url)
        slow_down(browser)
        pick(browser, files)
        wait_for(browser, lambda d: len(css(d, "li.entry")) == 2, what="two entries")
        submit(browser)
        wait_for(browser, lambda d: entry_states(d) == {"small.bin": "done", "large.bin": "uploading"},
                 what="one done, one uploading")
        browser.execute_script("window.beforeTheRestart = true;")
    wait_for(browser, lambda d: texts(d, "#connection-lost") == [CONNECTION_LOST], what="the lost-connection alert")
    marks = browser.execute_script(
        "return Array.from(document.querySelectorAll('li.entry')).map(li => [li.querySelector('.name').textContent,"
        " getComputedStyle(li.querySelector('.lost')).display, li.querySelector('.lost').textContent.trim(),"
        " getComputedStyle(li.querySelector('.percent')).color])")
    # The server's graceful stop cancels the upload in flight, and the diff that
    # drops it may beat the socket's close: large.bin then goes first (the
    # page's script still counts it as lost, below).
    assert marks in ([["small.bin", "inline", "not saved", "rgb(75, 83, 99)"],
                      ["large.bin", "inline", "failed", "rgb(75, 83, 99)"]],
                     [["small.bin", "inline", "not saved", "rgb(75, 83, 99)"]]), marks
    run_axe(browser, "disconnected")
    if secret:
        browser.save_screenshot(str(SCREENSHOTS / "disconnected.png"))
    with shipped_serve(tmp_path, port=port, secret=secret):
        wait_for(browser, connected, timeout=30, what="the page to connect again")
        reloaded = browser.execute_script("return window.beforeTheRestart === undefined")
        assert reloaded == (secret is None)
        wait_for(browser, lambda d: texts(d, "#lost-work p") != [""], what="the lost-work warning")
        (warning,) = texts(browser, "#lost-work p")
        assert warning == ("The connection to the server was lost, and with it 2 files not yet saved: "
                           "small.bin, large.bin. Choose them again and press Upload.")
        # Near the top, in the warning style, before the upload form.
        place = browser.execute_script("""
            var w = document.getElementById('lost-work'), s = getComputedStyle(w);
            return {top: w.getBoundingClientRect().top, role: w.getAttribute('role'), bg: s.backgroundColor,
                    beforeForm: !!(w.compareDocumentPosition(document.querySelector('fieldset.upload'))
                                   & Node.DOCUMENT_POSITION_FOLLOWING)};
        """)
        assert place == {"top": place["top"], "role": "alert", "bg": "rgb(255, 244, 229)", "beforeForm": True}
        assert place["top"] < 150
        assert texts(browser, "#connection-lost") == [""] and css(browser, "li.entry") == []
        run_axe(browser, "lost work said")
        if secret:
            browser.save_screenshot(str(SCREENSHOTS / "lost-work.png"))
        css(browser, "#lost-work button")[0].click()
        assert texts(browser, "#lost-work p") == [""]
        assert focused(browser) == css(browser, "input[type=file]")[0].get_attribute("id")
    assert saved_files(tmp_path) == {}
    assert upload_temp_files(tmp_path) == []


def test_a_first_visit_or_a_reload_says_nothing_lost(browser, tmp_path):
    files = make_files(tmp_path / "picked", ("chosen.bin", 1_000))
    with shipped_serve(tmp_path) as url:
        open_page(browser, url)
        assert texts(browser, "#lost-work p") == [""]
        assert not css(browser, "#lost-work")[0].is_displayed()
        pick(browser, files)
        wait_for(browser, lambda d: len(css(d, "li.entry")) == 1, what="the entry")
        browser.execute_script("window.beforeTheReload = true;")
        browser.refresh()  # the person's own reload while connected: no lost connection to report
        wait_for(browser, lambda d: d.execute_script("return window.beforeTheReload === undefined") and connected(d),
                 what="reloaded and connected")
        assert texts(browser, "#lost-work p") == [""] and css(browser, "li.entry") == []


def test_an_entry_dropped_by_the_server_just_before_the_connection_goes_is_said_lost(browser, tmp_path):
    """What a server's graceful stop can do: cancel an upload (the entry goes,
    not by the person's hand) a moment before the socket drops. The page's
    script still names it among the lost files once the page is back."""
    app = create_app(secret="browser-test-secret", uploads_dir=tmp_path / "uploads",
                     upload_configs={"files": {"accept": "any", "max_entries": 5}})
    files = make_files(tmp_path / "picked", ("kept.bin", 1_000), ("dropped.bin", 1_000))
    with serve_in_thread(app) as url:
        open_page(browser, url)
        pick(browser, files)
        wait_for(browser, lambda d: len(css(d, "li.entry")) == 2, what="two entries")
        # The server cancels dropped.bin (pushed as the button would, but no person clicked it)...
        browser.execute_script("""
            var button = document.querySelector('button.cancel[aria-label="cancel dropped.bin"]');
            liveSocket.execJS(button, JSON.stringify([["push", {event: button.getAttribute('phx-click'),
                value: {ref: button.getAttribute('phx-value-ref'), upload: button.getAttribute('phx-value-upload')}}]]));
        """)
        wait_for(browser, lambda d: list(entry_states(d)) == ["kept.bin"], what="dropped.bin to go")
        # ...and the connection drops; LiveView's client reconnects to the same server.
        browser.execute_script("liveSocket.getSocket().conn.close(4000, 'test')")
        wait_for(browser, lambda d: texts(d, "#lost-work p") != [""], timeout=30, what="the lost-work warning")
        assert texts(browser, "#lost-work p") == [LOST_WORK.format(count="2 files", names="kept.bin, dropped.bin")]
