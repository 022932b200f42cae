"""The page's signed session: ``data-phx-session`` / ``data-phx-static``.

:class:`SessionSigner` signs both tokens with the app's secret, through two
:class:`uploads.tokens.Signer` salted apart, and verifies them when the page
joins its ``lv:`` topic.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from uploads.tokens import InvalidToken, Signer

__all__ = ["SECRET_ENV", "InvalidSession", "PageSession", "SessionSigner", "new_view_id"]

#: The environment variable that holds the secret signing the pages, when none is given.
SECRET_ENV = "LIVEUPLOAD_SECRET"


class InvalidSession(ValueError):
    """A page token that fails verification; ``reason`` is what the join
    error reply should say: ``"stale"`` (expired) or ``"unauthorized"``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def new_view_id() -> str:
    """A fresh LiveView root id (``phx-`` + random, safe in CSS selectors)."""
    return "phx-" + secrets.token_urlsafe(12).replace("_", "A").replace("-", "B")


@dataclass(frozen=True)
class PageSession:
    """What one page render needs: the view id, CSRF token and signed tokens."""

    view_id: str
    csrf_token: str
    session_token: str
    static_token: str


class SessionSigner:
    """Signs and verifies the page's ``data-phx-session``/``data-phx-static``.

    The two tokens are salted separately, so a static token never verifies as
    a session. The session holds the view id and the page's CSRF token;
    :meth:`verify_join` checks both against the ``lv:`` topic and join params.
    """

    SESSION_SALT = "liveupload.page.session"
    STATIC_SALT = "liveupload.page.static"
    DEFAULT_MAX_AGE = 14 * 24 * 3600  # LiveView's own session token lifetime

    def __init__(self, secret: str | bytes, *, max_age: float | None = DEFAULT_MAX_AGE) -> None:
        self.max_age = max_age
        self._session = Signer(secret, self.SESSION_SALT, max_age=max_age)
        self._static = Signer(secret, self.STATIC_SALT, max_age=max_age)

    def new_page(self, **extra: Any) -> PageSession:
        """A new view id and CSRF token with their signed session/static tokens.

        ``extra`` goes into the session (JSON-serialisable values only).
        """
        view_id = new_view_id()
        csrf = secrets.token_urlsafe(24)
        session = {**extra, "id": view_id, "csrf": csrf}
        return PageSession(
            view_id=view_id,
            csrf_token=csrf,
            session_token=self._session.sign(session),
            static_token=self._static.sign({"id": view_id}),
        )

    def verify_session(self, token: Any) -> dict[str, Any]:
        """The session's data, or :class:`InvalidSession`."""
        return _verified(self._session, token, "session")

    def verify_static(self, token: Any) -> dict[str, Any]:
        """The static token's data, or :class:`InvalidSession`."""
        return _verified(self._static, token, "static")

    def verify_join(self, topic: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Check an ``lv:`` join payload and return the verified session.

        The session must verify, name the topic's view id, and carry the CSRF
        token the join sent in ``params._csrf_token``; a static token, when
        sent, must verify and name the same view.
        """
        if not isinstance(payload, Mapping):
            raise InvalidSession("unauthorized", "join payload is not an object")
        session = self.verify_session(payload.get("session"))
        view_id = topic[3:] if topic.startswith("lv:") else None
        if session.get("id") != view_id:
            raise InvalidSession("unauthorized", "session belongs to another view")
        params = payload.get("params")
        csrf = params.get("_csrf_token") if isinstance(params, Mapping) else None
        if not isinstance(csrf, str) or not secrets.compare_digest(
            csrf.encode(), str(session.get("csrf", "")).encode()
        ):
            raise InvalidSession("unauthorized", "CSRF token does not match the session")
        static = payload.get("static")
        if static is not None and self.verify_static(static).get("id") != view_id:
            raise InvalidSession("unauthorized", "static token belongs to another view")
        return session


#: What each way a token fails to verify tells the joining page, and the log.
_FAILURES = {
    "missing": ("unauthorized", "token missing"),
    "expired": ("stale", "token expired"),
    "forged": ("unauthorized", "token does not verify"),
}


def _verified(signer: Signer, token: Any, what: str) -> dict[str, Any]:
    try:
        data = signer.verify(token)
    except InvalidToken as exc:
        reason, detail = _FAILURES[exc.why]
        raise InvalidSession(reason, f"{what} {detail}") from None
    if not isinstance(data, dict):
        raise InvalidSession("unauthorized", f"{what} token holds no object")
    return data
