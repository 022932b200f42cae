"""Signed tokens: one :class:`Signer` per use, and the entry tokens of a session.

:class:`Signer` is itsdangerous's URL-safe timed serializer under a secret and
a salt; the salt names the use (entry tokens, a page's session, its static
token), so a token signed for one use never verifies for another.
:class:`EntryTokens` signs the token an ``lvu:`` join presents: the session
id in clear, to route the join, then the signed ``[config ref, entry ref,
entry id]``: the entry id is random, minted when the entry is announced, so
a token names that one entry, never a later one the client gives the same ref.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Literal

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

__all__ = ["EntryClaim", "EntryTokens", "InvalidToken", "Signer", "session_id_of"]

ENTRY_SALT = "liveupload-entry"

InvalidWhy = Literal["missing", "expired", "forged"]


class InvalidToken(ValueError):
    """A token that does not verify: ``why`` is ``"missing"`` (not a non-empty
    string), ``"expired"`` (older than ``max_age``) or ``"forged"`` (a bad
    signature, another salt or secret, malformed)."""

    def __init__(self, why: InvalidWhy) -> None:
        super().__init__(why)
        self.why: InvalidWhy = why


class Signer:
    """Signs JSON-serialisable data under ``secret`` for the use ``salt``."""

    def __init__(self, secret: str | bytes, salt: str, *, max_age: float | None = None) -> None:
        if not secret:
            raise ValueError("a Signer needs a non-empty secret")
        self.salt = salt
        self.max_age = max_age
        self._serializer = URLSafeTimedSerializer(secret, salt=salt)

    def sign(self, data: Any) -> str:
        return self._serializer.dumps(data)

    def verify(self, token: Any) -> Any:
        """The data ``token`` was signed with; raises :class:`InvalidToken`."""
        if not isinstance(token, str) or not token:
            raise InvalidToken("missing")
        try:
            # itsdangerous annotates max_age as int but only compares it with the age: seconds as a float work.
            return self._serializer.loads(token, max_age=self.max_age)  # type: ignore[arg-type]  # itsdangerous types max_age as int, takes None
        except SignatureExpired:
            raise InvalidToken("expired") from None
        except BadData:
            raise InvalidToken("forged") from None


@dataclass(frozen=True)
class EntryClaim:
    """What a verified entry token names."""

    config_ref: str
    entry_ref: str
    entry_id: str


class EntryTokens:
    """The entry tokens of one session, signed with a secret of its own.

    A token from another session, a forged one and an expired one all fail
    verification.
    """

    def __init__(self, session_id: str, max_age: float) -> None:
        self.session_id = session_id
        self._signer = Signer(secrets.token_bytes(32), ENTRY_SALT, max_age=max_age)

    def sign(self, config_ref: str, entry_ref: str, entry_id: str) -> str:
        return f"{self.session_id}.{self._signer.sign([config_ref, entry_ref, entry_id])}"

    def verify(self, token: Any) -> EntryClaim | None:
        """The claim of a valid token of this session, else ``None``."""
        if session_id_of(token) != self.session_id:
            return None
        try:
            payload = self._signer.verify(token.partition(".")[2])
        except InvalidToken:
            return None
        if not (isinstance(payload, list) and len(payload) == 3 and all(isinstance(p, str) for p in payload)):
            return None
        return EntryClaim(payload[0], payload[1], payload[2])


def session_id_of(token: Any) -> str | None:
    """The session a token claims to belong to (unverified: only for routing)."""
    if not isinstance(token, str) or "." not in token:
        return None
    return token.partition(".")[0] or None
