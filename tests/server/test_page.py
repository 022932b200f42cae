"""The page renderer (statics/dynamics, diffs, escaping), the live file
input's attributes, the signed page tokens, and the HTTP routes."""

from __future__ import annotations

import urllib.parse
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from server.app import ASSETS, create_app, find_node_modules, liveview_version, serve_in_thread
from markupsafe import Markup, escape

from client.page_view import read_page
from server.page import (
    CONNECTION_LOST,
    FAVICON_SVG,
    PAGE_CSS,
    PageEvents,
    Rendered,
    entry_refs,
    explain_error,
    format_error,
    page_html,
    render_upload_page,
)
from server.page.fragments import progress_status, selection_words
from server.page.sizes import human_size
from server.session_token import InvalidSession, SessionSigner

pytestmark = [pytest.mark.timeout(10), pytest.mark.pure]

EVIL = '"><script>alert(1)</script><img src=x onerror=alert(2) a=\''


@contextmanager
def http_client(app) -> Iterator[httpx.Client]:
    """The app under uvicorn on a loopback port, with a plain HTTP client."""
    with serve_in_thread(app) as url, httpx.Client(base_url=url, trust_env=False, timeout=5) as c:
        yield c


def entry(ref: str, **kw: Any) -> dict[str, Any]:
    base = {
        "ref": ref, "client_name": f"f{ref}.bin", "client_size": 10, "client_type": "x/y",
        "progress": 0, "done": False, "cancelled": False, "valid": True, "errors": [],
    }
    return {**base, **kw}


def config(**kw: Any) -> dict[str, Any]:
    base = {"name": "avatar", "ref": "phx-F1", "accept": "any", "max_entries": 1,
            "auto_upload": False, "entries": []}
    return {**base, **kw}


class Collect(HTMLParser):
    """Elements and attributes as a browser's parser sees them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


# ------------------------------------------------------------------ Rendered


def test_rendered_html_and_join_form():
    r = Rendered(["<p>", "</p><b>", "</b>"], ["a", Markup("<i>b</i>")])
    assert r.to_html() == "<p>a</p><b><i>b</i></b>"
    assert r.to_json() == {"0": "a", "1": "<i>b</i>", "s": ["<p>", "</p><b>", "</b>"]}


def test_rendered_escapes_plain_str_dynamics():
    r = Rendered(["<p>", "</p>"], ["<script>&'\""])
    assert r.dynamics == ("&lt;script&gt;&amp;&#39;&#34;",)


def test_rendered_validates_shape():
    with pytest.raises(ValueError, match="len\\(statics\\) == len\\(dynamics\\) \\+ 1"):
        Rendered(["a"], ["x"])
    with pytest.raises(TypeError):
        Rendered([1, 2], ["x"])


def test_diff_only_changed_keys_and_full_on_new_statics():
    a = Rendered(["<p>", "|", "|", "</p>"], ["1", "2", "3"])
    b = Rendered(["<p>", "|", "|", "</p>"], ["1", "two", "3"])
    assert b.diff(a) == {"1": "two"}
    assert a.diff(a) == {}
    c = Rendered(["<div>", "</div>"], ["x"])
    assert c.diff(a) == c.to_json()
    assert a.diff(None) == a.to_json()


def test_escape_helpers():
    # The page escapes with markupsafe: quotes too (values go into attributes), Markup as is.
    assert escape("<a href='x'>") == "&lt;a href=&#39;x&#39;&gt;"
    assert escape(Markup("<b>")) == "<b>"
    assert Markup(", ").join(["<", Markup("<i>")]) == "&lt;, <i>"
    assert format_error("too_large") == "too_large"
    assert format_error(("writer_failure", "disk full")) == "writer_failure: disk full"
    assert format_error(["a", "b", "c"]) == "a: b: c"


# --------------------------------------------------------------- upload page


def test_live_file_input_has_every_attribute_the_client_reads():
    r = render_upload_page([config(max_entries=3, accept=[".png", "image/*"], auto_upload=True)])
    (inp,) = Collect(r.to_html()).find("input", type="file")
    assert inp["id"] == "phx-F1"
    assert inp["name"] == "avatar"
    assert inp["data-phx-hook"] == "Phoenix.LiveFileUpload"
    assert inp["data-phx-upload-ref"] == "phx-F1"
    for attr in ("data-phx-active-refs", "data-phx-done-refs",
                 "data-phx-preflighted-refs", "data-phx-error-refs"):
        assert inp[attr] == ""
    assert "multiple" in inp and "data-phx-auto-upload" in inp
    assert inp["accept"] == ".png,image/*"


def test_single_entry_input_without_accept_or_auto_upload():
    r = render_upload_page([config()])
    (inp,) = Collect(r.to_html()).find("input", type="file")
    assert "multiple" not in inp and "accept" not in inp and "data-phx-auto-upload" not in inp


def test_form_binds_change_and_submit():
    html = render_upload_page([config()], events=PageEvents(change="v", submit="s")).to_html()
    (form,) = Collect(html).find("form")
    assert form["phx-change"] == "v" and form["phx-submit"] == "s"
    assert Collect(html).find("button", type="submit")


def test_entry_refs_lists():
    entries = [
        entry("0", preflighted=True, progress=40),
        entry("1", done=True, progress=100, preflighted=True),
        entry("2", valid=False, errors=["too_large"]),
        entry("3", cancelled=True),
        entry("4"),
        entry("5", done=True),  # done implies preflighted
    ]
    assert entry_refs(entries) == {
        "active": "0,1,2,4,5",
        "done": "1,5",
        "preflighted": "0,1,5",
        "error": "2",
    }


def test_entries_progress_errors_and_cancel_button():
    cfg = config(entries=[
        entry("0", progress=42),
        entry("1", done=True, progress=100),
        entry("2", valid=False, errors=["too_large", ("writer_failure", "x")]),
        entry("3", cancelled=True),
    ], errors=["too_many_files"])
    html = render_upload_page([cfg]).to_html()
    doc = Collect(html)
    lis = doc.find("li")
    states = {a["data-ref"]: a["data-state"] for a in lis if a.get("data-ref")}
    assert states == {"0": "uploading", "1": "done", "2": "error"}  # cancelled not shown
    assert '<progress value="42" max="100">42%</progress>' in html
    assert '<span class="error">too_large</span>' in html
    assert '<span class="error">writer_failure: x</span>' in html
    assert '<li class="error">too_many_files</li>' in html
    buttons = doc.find("button", **{"phx-click": "cancel-upload"})
    assert [b["phx-value-ref"] for b in buttons] == ["0", "1", "2"]  # done entries too: removable before saving
    assert all(b["phx-value-upload"] == "avatar" for b in buttons)


def test_a_crashed_upload_is_shown_failed_with_a_dismiss_button_but_is_not_active():
    """A cancelled entry with errors (its channel crashed: a writer that raised)
    stays on the page with its error in words, out of every ref list (LiveView's
    client stops tracking it and does not hold a submit for it)."""
    crash = RuntimeError("disk on fire at chunk 2")
    cfg = config(entries=[
        entry("0", done=True, progress=100, preflighted=True),
        entry("1", preflighted=True, progress=40, cancelled=True, valid=False,
              errors=[("channel_crash", crash), "channel_crash"]),  # the server's record, then the client's
        entry("2", cancelled=True),  # cancelled by the person: gone
    ])
    html = render_upload_page([cfg]).to_html()
    doc = Collect(html)
    states = {a["data-ref"]: a["data-state"] for a in doc.find("li") if a.get("data-ref")}
    assert states == {"0": "done", "1": "error"}
    assert html.count('<span class="error">') == 1  # the client's bare code repeats the server's
    assert '<span class="error">channel_crash: disk on fire at chunk 2</span>' in html
    assert ('<span class="why">: the server could not write the file: its upload crashed '
            "(disk on fire at chunk 2)</span>") in html
    (dismiss,) = doc.find("button", **{"phx-value-ref": "1"})
    assert dismiss["phx-click"] == "cancel-upload" and dismiss["phx-value-upload"] == "avatar"
    assert dismiss["aria-label"] == "dismiss f1.bin" and ">dismiss</button>" in html
    (cancel,) = doc.find("button", **{"phx-value-ref": "0"})
    assert cancel["aria-label"] == "cancel f0.bin"
    (inp,) = doc.find("input", type="file")
    assert inp["data-phx-active-refs"] == "0" and inp["data-phx-done-refs"] == "0"
    assert inp["data-phx-preflighted-refs"] == "0" and inp["data-phx-error-refs"] == ""


def test_not_accepted_is_explained_with_the_accepted_types():
    cfg = config(accept=[".txt", "image/*"], max_entries=2,
                 entries=[entry("0", client_name="cat.exe", valid=False, errors=["not_accepted"])])
    assert explain_error("not_accepted", cfg) == "this type of file is not accepted (accepted: .txt, image/*)"
    html = render_upload_page([cfg]).to_html()
    assert ('<span class="error">not_accepted</span><span class="why">: this type of file is not accepted '
            "(accepted: .txt, image/*)</span>") in html
    assert explain_error("not_accepted") == "this type of file is not accepted (accepted: any)"


def test_every_entry_carries_a_failed_text_for_a_lost_connection():
    """The stylesheet shows it on every entry but a failed one while LiveView
    marks the root with phx-error: real text, not CSS content, so it is read
    out; a finished upload is "not saved" (its 100% is no longer green)."""
    html = render_upload_page([config(max_entries=3, entries=[
        entry("0", progress=30, preflighted=True), entry("1", progress=100, preflighted=True, done=True),
        entry("2")])]).to_html()
    assert ('<span class="percent"><span aria-hidden="true">30%</span>'
            '<span class="lost"> failed</span></span>') in html
    assert '<span aria-hidden="true">100%</span><span class="lost"> not saved</span>' in html
    assert '<span aria-hidden="true">0%</span><span class="lost"> not sent</span>' in html
    assert ".phx-error li.entry:not([data-state=error]) .lost{display:inline}" in PAGE_CSS
    assert ".phx-error li.entry[data-state=done] .percent{color:#4b5363;font-weight:400}" in PAGE_CSS
    assert "li.entry .lost{display:none" in PAGE_CSS


def test_the_connection_lost_alert_is_outside_the_view_and_filled_by_the_script():
    page = SessionSigner("s").new_page()
    html = page_html(page, render_upload_page([config()]))
    doc = Collect(html)
    (banner,) = doc.find("p", id="connection-lost")
    assert banner["role"] == "alert"
    assert '<p id="connection-lost" role="alert"></p>\n<div id="lost-work" class="warning" role="alert">' in html
    assert '<div id="' + page.view_id in html.split('<div id="lost-work"', 1)[1]  # both empty, before the root
    assert "#connection-lost:empty{display:none}" in PAGE_CSS
    assert 'root.classList.contains("phx-error")' in html and CONNECTION_LOST in html.replace("\\u2026", "\u2026")
    assert "failed" in CONNECTION_LOST


def test_progress_diff_touches_only_the_entries_slot_between_milestones():
    before = render_upload_page([config(entries=[entry("0", preflighted=True, progress=10)])])
    after = render_upload_page([config(entries=[entry("0", preflighted=True, progress=20)])])
    diff = after.diff(before)
    # Only the entry's own fields that show its percentage (entries are a keyed comprehension).
    assert list(diff) == ["6"] and diff["6"]["k"]["kc"] == 1 and set(diff["6"]["k"]) == {"0", "kc"}
    assert set(diff["6"]["k"]["0"].values()) == {"20"}
    past = render_upload_page([config(entries=[entry("0", preflighted=True, progress=55)])])
    assert set(past.diff(after)) == {"6", "7"} and past.diff(after)["7"] == "Uploading 1 file: 50%"  # + the live region
    done = render_upload_page([config(entries=[entry("0", preflighted=True, done=True, progress=100)])])
    assert set(done.diff(past)) == {"1", "6", "7"}  # done refs + entries + the live region
    assert done.diff(past)["1"] == "0" and done.diff(past)["7"] == "1 file uploaded"


def test_progress_is_announced_politely_at_milestones_and_on_completion():
    def status(*entries: dict[str, Any]) -> str:
        html = render_upload_page([config(max_entries=5, entries=list(entries))]).to_html()
        (region,) = Collect(html).find("p", id="phx-F1-progress")
        assert region["role"] == "status" and region["aria-live"] == "polite"
        return progress_status(config(entries=list(entries)))

    assert status() == "" and status(entry("0")) == ""  # nothing started
    assert status(entry("0", progress=10)) == "Uploading 1 file"
    # Milestones of the bytes sent, each entry weighted by its size.
    big, small = entry("0", client_size=300, progress=60), entry("1", client_size=100, progress=0)
    assert status(big, small) == "Uploading 2 files: 25%"  # 180/400 = 45%
    assert status({**big, "progress": 90}, small) == "Uploading 2 files: 50%"  # 270/400
    assert status({**big, "done": True, "progress": 100}, {**small, "progress": 100}) == "Uploading 2 files: 75%"
    assert status({**big, "done": True, "progress": 100}, {**small, "done": True, "progress": 100}) == (
        "2 files uploaded")
    # Refused and cancelled entries are not counted.
    assert status(entry("0", done=True, progress=100), entry("1", valid=False, errors=["too_large"]),
                  entry("2", cancelled=True)) == "1 file uploaded"


@pytest.mark.parametrize(("size", "words"), [
    (0, "0 bytes"), (1, "1 byte"), (1023, "1023 bytes"), (1024, "1.0 KB"), (40_000, "39.1 KB"),
    (1_048_575, "1.0 MB"), (8_000_000, "7.6 MB"), (5 * 1024**3, "5.0 GB"),
])
def test_sizes_in_human_units(size, words):
    assert human_size(size) == words


def test_entry_sizes_are_in_human_units_with_the_exact_bytes_in_the_title():
    html = render_upload_page([config(entries=[entry("0", client_size=40_000)])]).to_html()
    assert '<span class="size" title="40000 bytes" data-bytes="40000">39.1 KB</span>' in html


def test_saved_list_and_notice():
    r = render_upload_page([config()], [{"name": "cat.png", "size": 150000}], notice="saved 1")
    html = r.to_html()
    assert ('<li class="saved">cat.png (<span class="size" title="150000 bytes" data-bytes="150000">146.5 KB</span>)'
            '</li>') in html
    assert '<h2 id="saved-heading">Saved files</h2><ul id="saved" aria-labelledby="saved-heading">' in html
    assert read_page(html).saved == ["cat.png (150000 bytes)"]  # clients read the exact size
    assert '<p id="notice">saved 1</p>' in html


def test_several_configs_each_get_their_slots():
    r = render_upload_page([config(), config(name="docs", ref="phx-F2", max_entries=5)])
    doc = Collect(r.to_html())
    assert [i["id"] for i in doc.find("input", type="file")] == ["phx-F1", "phx-F2"]
    assert len(r.dynamics) == 8 * 2 + 2


def test_hostile_names_are_escaped_everywhere():
    cfg = config(
        name=EVIL, ref="phx-F1",
        entries=[entry("0", client_name=EVIL, errors=[EVIL], valid=False, client_size=EVIL)],
        errors=[EVIL], accept=[EVIL],
    )
    html = page_html(
        SessionSigner("s").new_page(),
        render_upload_page([cfg], [{"name": EVIL, "size": EVIL}], notice=EVIL,
                           events=PageEvents(cancel=EVIL)),
        title=EVIL,
    )
    doc = Collect(html)
    assert not doc.find("img")
    assert [t for t, _ in doc.tags].count("script") == 3  # only our own three
    assert "<script>alert" not in html


# ------------------------------------------------------------------ tokens


def test_session_round_trip_and_verify_join():
    signer = SessionSigner("secret")
    page = signer.new_page(user="u")
    payload = {"session": page.session_token, "static": page.static_token,
               "params": {"_csrf_token": page.csrf_token, "_mounts": 0}}
    session = signer.verify_join(f"lv:{page.view_id}", payload)
    assert session == {"user": "u", "id": page.view_id, "csrf": page.csrf_token}
    # static is optional
    del payload["static"]
    assert signer.verify_join(f"lv:{page.view_id}", payload)["id"] == page.view_id


@pytest.mark.parametrize(
    "mutate, reason, detail",
    [
        (lambda p, pg: p.update(session=p["session"][:-2] + "xx"), "unauthorized", "does not verify"),
        (lambda p, pg: p.update(session=None), "unauthorized", "missing"),
        (lambda p, pg: p.update(session=SessionSigner("other").new_page().session_token),
         "unauthorized", "does not verify"),
        (lambda p, pg: p.update(session=p["static"]), "unauthorized", "does not verify"),
        (lambda p, pg: p["params"].update(_csrf_token="nope"), "unauthorized", "CSRF"),
        (lambda p, pg: p.pop("params"), "unauthorized", "CSRF"),
        (lambda p, pg: p.update(static="garbage"), "unauthorized", "static token does not verify"),
    ],
)
def test_verify_join_refuses(mutate, reason, detail):
    signer = SessionSigner("secret")
    page = signer.new_page()
    payload = {"session": page.session_token, "static": page.static_token,
               "params": {"_csrf_token": page.csrf_token}}
    mutate(payload, page)
    with pytest.raises(InvalidSession, match=detail) as info:
        signer.verify_join(f"lv:{page.view_id}", payload)
    assert info.value.reason == reason


def test_session_for_another_view_is_refused():
    signer = SessionSigner("secret")
    a, b = signer.new_page(), signer.new_page()
    payload = {"session": a.session_token, "params": {"_csrf_token": a.csrf_token}}
    with pytest.raises(InvalidSession, match="another view"):
        signer.verify_join(f"lv:{b.view_id}", payload)
    payload = {"session": a.session_token, "static": b.static_token,
               "params": {"_csrf_token": a.csrf_token}}
    with pytest.raises(InvalidSession, match="static token belongs to another view"):
        signer.verify_join(f"lv:{a.view_id}", payload)
    with pytest.raises(InvalidSession):
        signer.verify_join("lv:", "not a mapping")


def test_expired_session_is_stale():
    page = SessionSigner("secret").new_page()
    with pytest.raises(InvalidSession) as info:
        SessionSigner("secret", max_age=-1).verify_session(page.session_token)
    assert info.value.reason == "stale"


def test_signer_needs_a_secret():
    with pytest.raises(ValueError):
        SessionSigner("")


def test_view_ids_are_unique_and_selector_safe():
    signer = SessionSigner("s")
    ids = {signer.new_page().view_id for _ in range(200)}
    assert len(ids) == 200
    assert all(i.startswith("phx-") and i[4:].isalnum() for i in ids)


# --------------------------------------------------------------------- HTTP


def test_index_page_boots_live_socket_with_a_verifiable_session():
    app = create_app(secret="s")
    with http_client(app) as http:
        resp = http.get("/")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    doc = Collect(resp.text)
    (root,) = [a for t, a in doc.tags if t == "div" and "data-phx-main" in a]
    (meta,) = doc.find("meta", name="csrf-token")
    payload = {"session": root["data-phx-session"], "static": root["data-phx-static"],
               "params": {"_csrf_token": meta["content"]}}
    assert app.state.signer.verify_join(f"lv:{root['id']}", payload)["id"] == root["id"]
    srcs = [a.get("src") for t, a in doc.tags if t == "script" and a.get("src")]
    assert srcs == ["/assets/phoenix.min.js", "/assets/phoenix_live_view.min.js"]
    assert 'new LiveView.LiveSocket("/live", Phoenix.Socket, {params: {_csrf_token: csrf}})' in resp.text
    assert ".connect()" in resp.text
    assert doc.find("input", type="file")  # dead render of the default config


def test_each_page_gets_its_own_view_and_csrf():
    app = create_app(secret="s")
    with http_client(app) as http:
        a, b = http.get("/").text, http.get("/").text
    ids = [[x["id"] for t, x in Collect(h).tags if t == "div" and "data-phx-main" in x][0] for h in (a, b)]
    assert ids[0] != ids[1]


def test_assets_are_served_from_node_modules(tmp_path: Path):
    modules = tmp_path / "node_modules"
    for name, rel in ASSETS.items():
        (modules / rel).parent.mkdir(parents=True, exist_ok=True)
        (modules / rel).write_text(f"/* {name} */")
    (modules / "phoenix_live_view" / "package.json").write_text('{"version": "9.9.9"}')
    app = create_app(secret="s", node_modules=modules)
    assert app.state.liveview_version == "9.9.9"
    with http_client(app) as http:
        resp = http.get("/assets/phoenix.min.js")
        assert resp.status_code == 200
        assert resp.text == "/* phoenix.min.js */"
        assert resp.headers["content-type"].startswith("text/javascript")
        assert http.get("/assets/phoenix_live_view.min.js").text == "/* phoenix_live_view.min.js */"
        assert http.get("/assets/..%2Fpackage.json").status_code == 404
        assert http.get("/assets/other.js").status_code == 404


def test_the_page_has_an_icon_and_no_request_for_one_fails(tmp_path: Path):
    html = page_html(SessionSigner("s").new_page(), render_upload_page([config()]))
    (icon,) = Collect(html).find("link", rel="icon")
    assert icon["href"] == "data:image/svg+xml," + urllib.parse.quote(FAVICON_SVG)
    with http_client(create_app(secret="s", node_modules=tmp_path)) as http:
        resp = http.get("/favicon.ico")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("image/svg+xml")
    assert resp.text == FAVICON_SVG and FAVICON_SVG.startswith("<svg")


def test_missing_node_modules_is_a_clear_404(tmp_path: Path):
    app = create_app(secret="s", node_modules=tmp_path / "nowhere")
    assert app.state.liveview_version is None
    with http_client(app) as http:
        resp = http.get("/assets/phoenix.min.js")
    assert resp.status_code == 404 and "npm ci" in resp.text


def test_find_node_modules_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    assert find_node_modules(tmp_path) == tmp_path
    monkeypatch.setenv("LIVEUPLOAD_NODE_MODULES", str(tmp_path / "env"))
    assert find_node_modules() == tmp_path / "env"
    monkeypatch.delenv("LIVEUPLOAD_NODE_MODULES")
    repo = Path(__file__).resolve().parents[2] / "node_modules"
    if repo.is_dir():
        assert find_node_modules() == repo


def test_installed_client_versions_match_the_protocol_doc():
    modules = find_node_modules()
    if not (modules / "phoenix_live_view").is_dir():
        pytest.skip("npm packages not installed")
    assert liveview_version(modules).startswith("1.")
    for rel in ("phoenix/priv/static/phoenix.min.js",
                "phoenix_live_view/priv/static/phoenix_live_view.min.js"):
        assert (modules / rel).is_file()


def test_the_selection_is_said_in_words_and_entries_over_the_limit_are_marked():
    assert selection_words(config()) == "No files chosen"
    two = config(max_entries=2, entries=[entry("0"), entry("1")])
    assert selection_words(two) == "2 files chosen"
    over = config(max_entries=2, entries=[entry("0"), entry("1"), entry("2"), entry("3", cancelled=True)],
                  errors=["too_many_files"])
    assert selection_words(over) == "3 files chosen: 1 over the limit of 2"
    html = render_upload_page([over]).to_html()
    doc = Collect(html)
    marked = [li["data-ref"] for li in doc.find("li") if "data-over-limit" in li]
    assert marked == ["2"]
    assert '<span class="over">over the limit of 2 files: cancel this one or another</span>' in html
    # The config's error sits before the entries, right under the input, which it describes.
    assert html.index('class="upload-errors-box"') < html.index('class="entries"')
    (picker,) = doc.find("input", type="file")
    assert picker["aria-describedby"] == "phx-F1-selection phx-F1-errors"


def test_the_cancel_buttons_belong_to_no_form_and_the_input_is_not_locked():
    """Phoenix's client disables a form's elements during a submit: the entries
    (and their buttons) are outside the <form>, the input is tied to it by its
    form attribute and is phx-update="ignore" (never disabled nor locked)."""
    html = render_upload_page([config(entries=[entry("0")])]).to_html()
    form = html[html.index("<form"):html.index("</form>")]
    assert "button class=\"cancel\"" not in form and 'type="file"' not in form
    (picker,) = Collect(html).find("input", type="file")
    assert picker["form"] == "upload-form" and picker["phx-update"] == "ignore"


def test_options_sizes_are_in_human_units_with_the_exact_bytes():
    html = render_upload_page([config(max_file_size=8_000_000, chunk_size=64_000)]).to_html()
    assert '<dt>Largest file</dt><dd><span class="size" title="8000000 bytes" data-bytes="8000000">7.6 MB</span>' in html
    assert '<span class="size" title="64000 bytes" data-bytes="64000">62.5 KB</span>' in html
