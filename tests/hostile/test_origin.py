"""Phoenix's ``check_origin`` and a Host check on the socket: a page on
another site, or a DNS-rebinding name, cannot open it."""

from __future__ import annotations

import httpx
import pytest

from server.app import create_app, serve_in_thread
from server.origin import UpgradeGuard, default_allowed_hosts, normalise_origin

from .rawws import RawSocket
from .serving import serve

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def url(tmp_path):
    app = create_app(uploads_dir=tmp_path / "saved", allowed_origins=["https://pages.example"],
                     allowed_hosts=default_allowed_hosts("127.0.0.1"))
    with serve_in_thread(app) as base:
        yield base


def upgrade(url: str, **headers: str) -> int:
    raw = RawSocket(url, rcvbuf=None)
    try:
        return raw.upgrade(**headers)
    finally:
        raw.close()


def test_a_foreign_origin_is_refused_before_accept(url):
    assert upgrade(url, origin="http://evil.example") == 403
    assert upgrade(url, origin="null") == 403
    port = url.rsplit(":", 1)[1]
    assert upgrade(url, origin=f"https://127.0.0.1:{port}") == 403  # another scheme is another origin
    assert upgrade(url, origin="http://127.0.0.1:1") == 403  # and another port


def test_the_pages_own_origin_a_configured_one_and_none_are_accepted(url):
    assert upgrade(url, origin=url) == 101
    assert upgrade(url, origin=url.replace("127.0.0.1", "localhost"), host=url[7:].replace("127.0.0.1", "localhost")) == 101
    assert upgrade(url, origin="https://pages.example") == 101
    assert upgrade(url) == 101  # not a browser: no Origin, as Phoenix allows


def test_a_foreign_host_is_refused_on_the_socket_and_the_page(url):
    port = url.rsplit(":", 1)[1]
    # DNS rebinding: the attacker's name, resolved to us; its pages are "same origin" with it.
    assert upgrade(url, host=f"rebind.evil.example:{port}", origin=f"http://rebind.evil.example:{port}") == 403
    page = httpx.get(url + "/", headers={"host": f"rebind.evil.example:{port}"}, trust_env=False, timeout=5)
    assert page.status_code == 400
    assert httpx.get(url + "/", trust_env=False, timeout=5).status_code == 200
    assert httpx.get(url.replace("127.0.0.1", "localhost") + "/", trust_env=False, timeout=5).status_code == 200


def test_default_hosts_follow_the_bind_address():
    assert default_allowed_hosts("127.0.0.1") == ["127.0.0.1", "::1", "localhost"]
    assert default_allowed_hosts("10.0.0.5") == ["10.0.0.5"]
    assert default_allowed_hosts("10.0.0.5", ["Up.Example"]) == ["10.0.0.5", "up.example"]
    assert default_allowed_hosts("0.0.0.0") is None  # every interface: names unknown, no check
    assert default_allowed_hosts("0.0.0.0", ["up.example"]) == ["up.example"]


def test_origins_are_compared_normalised():
    assert normalise_origin("HTTP://Example.com") == "http://example.com:80"
    assert normalise_origin("https://example.com:443") == "https://example.com:443"
    assert normalise_origin("null") is None and normalise_origin("file:///x") is None
    with pytest.raises(ValueError):
        UpgradeGuard(lambda *a: None, allowed_origins=["not an origin"])


@pytest.mark.substrates("pool")  # the server runs in a child process
def test_serve_checks_origin_and_host_by_default(tmp_path):


    with serve(tmp_path, "--allowed-origin", "https://pages.example") as served:
        url = served.url
        port = url.rsplit(":", 1)[1]
        assert upgrade(url, origin="http://evil.example") == 403
        assert upgrade(url, host=f"evil.example:{port}") == 403
        assert upgrade(url, origin="https://pages.example") == 101
        assert upgrade(url, origin=url) == 101
        served.stop(15, timeout=20)
