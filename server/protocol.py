"""Phoenix Channels wire format, serializer V2 (``vsn=2.0.0``).

Text frames are JSON arrays ``[join_ref, ref, topic, event, payload]``.  Binary
frames start with a one-byte *kind*:

* kind 0 from the client, a push:
  ``<<0, len(join_ref), len(ref), len(topic), len(event), join_ref, ref, topic, event, data>>``
* kind 0 from the server, a push without ref:
  ``<<0, len(join_ref), len(topic), len(event), join_ref, topic, event, data>>``
* kind 1 from the server, a reply:
  ``<<1, len(join_ref), len(ref), len(topic), len(status), join_ref, ref, topic, status, data>>``
* kind 2 from the server, a broadcast: ``<<2, len(topic), len(event), topic, event, data>>``

Every length is one byte, so each string field is at most 255 UTF-8 bytes.
This module is pure (no I/O) so the server and the Python client share it.
Anything malformed raises :class:`ProtocolError` with a message that says what
was wrong, never a bare ``KeyError``/``IndexError``/``UnicodeDecodeError``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "KIND_PUSH",
    "KIND_REPLY",
    "KIND_BROADCAST",
    "MAX_FIELD_BYTES",
    "BINARY_PUSH_HEADER",
    "Message",
    "Payload",
    "ProtocolError",
    "decode_text",
    "decode_binary",
    "encode_text",
    "encode_binary",
    "encode_reply",
    "OkReply",
    "encode_binary_reply",
    "encode_binary_server_push",
    "encode_binary_broadcast",
    "encode_close",
    "encode_error",
    "binary_push_overhead",
]

KIND_PUSH = 0
KIND_REPLY = 1
KIND_BROADCAST = 2
MAX_FIELD_BYTES = 255
#: Bytes before the strings of a client push: the kind and four lengths.
BINARY_PUSH_HEADER = 5

Payload = dict | bytes | memoryview


class ProtocolError(ValueError):
    """A frame that does not follow the V2 serializer; the message says why."""


@dataclass(frozen=True)
class Message:
    """One Phoenix Channels message.

    ``payload`` is a ``dict`` for JSON frames and bytes-like for binary frames
    (a ``memoryview`` when decoded by :func:`decode_binary`; compare it with
    ``==`` or turn it into ``bytes``).
    ``join_ref``/``ref`` are ``None`` where the wire has ``null`` (heartbeats,
    server pushes).
    """

    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: Payload


# --------------------------------------------------------------------- text


def decode_text(frame: str) -> Message:
    """Decode a JSON text frame into a :class:`Message`.

    The frame must be a JSON array of exactly five items: ``join_ref`` and
    ``ref`` strings or ``null``, ``topic`` and ``event`` non-empty strings, and
    a JSON object payload.
    """
    if not isinstance(frame, str):
        raise ProtocolError(f"text frame must be str, got {type(frame).__name__}")
    try:
        if frame.startswith("\ufeff"):  # as json.loads refuses it
            raise ValueError("Unexpected UTF-8 BOM (decode using utf-8-sig)")
        data = _DECODER.decode(frame)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"text frame is not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ProtocolError(
            f"text frame must be a JSON array [join_ref, ref, topic, event, payload], "
            f"got {type(data).__name__}"
        )
    if len(data) != 5:
        raise ProtocolError(f"text frame must have 5 elements, got {len(data)}")
    join_ref, ref, topic, event, payload = data
    _check_ref("join_ref", join_ref)
    _check_ref("ref", ref)
    _check_name("topic", topic)
    _check_name("event", event)
    if not isinstance(payload, dict):
        raise ProtocolError(
            f"payload must be a JSON object, got {_json_type(payload)}"
        )
    return Message(join_ref, ref, topic, event, payload)


def encode_text(message: Message) -> str:
    """Encode a message with a ``dict`` payload as a JSON text frame."""
    if isinstance(message.payload, (bytes, bytearray, memoryview)):
        raise ProtocolError("binary payloads go in binary frames; use encode_binary*")
    try:
        return _ENCODER.encode([message.join_ref, message.ref, message.topic, message.event, message.payload])
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"message cannot be encoded as JSON: {exc}") from None


def encode_reply(
    join_ref: str | None, ref: str | None, topic: str, status: str, response: dict
) -> str:
    """A ``phx_reply`` text frame: ``{"status": status, "response": response}``."""
    return encode_text(
        Message(join_ref, ref, topic, "phx_reply", {"status": status, "response": response})
    )


class OkReply:
    """The ``{"status": "ok", "response": {}}`` reply of one topic, encoded
    once: :meth:`frame` only splices in the ``ref`` (every chunk of an upload
    is answered with it).  The same text as :func:`encode_reply` gives."""

    __slots__ = ("_head", "_tail")

    def __init__(self, join_ref: str | None, topic: str) -> None:
        self._head = f"[{json.dumps(join_ref, ensure_ascii=True)},"
        self._tail = f',{json.dumps(topic, ensure_ascii=True)},"phx_reply",{{"status":"ok","response":{{}}}}]'

    def frame(self, ref: str | None) -> str:
        """The reply to push ``ref``."""
        if ref is None:
            return f"{self._head}null{self._tail}"
        if ref.isascii() and ref.isalnum():  # Phoenix's refs are counters: nothing to escape
            return f'{self._head}"{ref}"{self._tail}'
        return self._head + json.dumps(ref, ensure_ascii=True) + self._tail


def encode_close(join_ref: str | None, topic: str) -> str:
    """``phx_close``: the channel stopped normally (Phoenix uses join_ref as ref)."""
    return encode_text(Message(join_ref, join_ref, topic, "phx_close", {}))


def encode_error(join_ref: str | None, topic: str, reason: str = "channel_crash") -> str:
    """``phx_error``: the channel crashed; the client will try to rejoin."""
    return encode_text(Message(join_ref, join_ref, topic, "phx_error", {"reason": reason}))


# ------------------------------------------------------------------- binary


def decode_binary(frame: bytes | bytearray | memoryview) -> Message:
    """Decode a client's binary push (kind 0, with ref) into a :class:`Message`.

    The payload is the raw remainder of the frame as a ``memoryview`` of it
    (a 64 KB chunk is never copied here; of a ``bytes`` frame, read-only and
    never changing).  Server kinds
    (1 reply, 2 broadcast) are not valid from a client and raise
    :class:`ProtocolError`, as does a truncated header, a length that runs past
    the end of the frame, or a field that is not UTF-8.
    """
    buf = bytes(frame)  # the same object for bytes; a copy only of another buffer
    if not buf:
        raise ProtocolError("binary frame is empty")
    kind = buf[0]
    if kind != KIND_PUSH:
        if kind in (KIND_REPLY, KIND_BROADCAST):
            raise ProtocolError(
                f"binary frame kind {kind} is server-to-client only; clients send kind 0 (push)"
            )
        raise ProtocolError(f"unknown binary frame kind {kind}")
    if len(buf) < BINARY_PUSH_HEADER:
        raise ProtocolError(
            f"binary push header truncated: need {BINARY_PUSH_HEADER} bytes, got {len(buf)}"
        )
    sizes = buf[1:BINARY_PUSH_HEADER]
    names = ("join_ref", "ref", "topic", "event")
    fields: list[str] = []
    offset = BINARY_PUSH_HEADER
    for name, size in zip(names, sizes, strict=True):
        end = offset + size
        if end > len(buf):
            raise ProtocolError(
                f"binary push {name} length {size} at offset {offset} runs past the "
                f"end of the {len(buf)}-byte frame"
            )
        raw = buf[offset:end]
        try:
            fields.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ProtocolError(f"binary push {name} is not valid UTF-8") from None
        offset = end
    join_ref, ref, topic, event = fields
    if not topic:
        raise ProtocolError("binary push topic is empty")
    if not event:
        raise ProtocolError("binary push event is empty")
    return Message(join_ref, ref, topic, event, memoryview(buf)[offset:])


def encode_binary(message: Message) -> bytes:
    """Encode a client push with a ``bytes`` payload (kind 0, with ref).

    ``None`` refs are sent as empty strings (the JS client never sends them).
    """
    return bytes([KIND_PUSH]) + _fields_and_data(
        (message.join_ref or "", message.ref or "", message.topic, message.event),
        _as_bytes(message.payload),
    )


def encode_binary_server_push(join_ref: str | None, topic: str, event: str, data: bytes) -> bytes:
    """A server push with a binary payload (kind 0, no ref)."""
    return bytes([KIND_PUSH]) + _fields_and_data((join_ref or "", topic, event), _as_bytes(data))


def encode_binary_reply(
    join_ref: str | None, ref: str | None, topic: str, status: str, data: bytes
) -> bytes:
    """A server reply with a binary response (kind 1)."""
    return bytes([KIND_REPLY]) + _fields_and_data(
        (join_ref or "", ref or "", topic, status), _as_bytes(data)
    )


def encode_binary_broadcast(topic: str, event: str, data: bytes) -> bytes:
    """A server broadcast with a binary payload (kind 2)."""
    return bytes([KIND_BROADCAST]) + _fields_and_data((topic, event), _as_bytes(data))


def binary_push_overhead(join_ref: str, ref: str, topic: str, event: str = "chunk") -> int:
    """Bytes a client push adds around its data: use it to bound the socket's
    maximum message size from ``chunk_size``."""
    return BINARY_PUSH_HEADER + sum(len(s.encode("utf-8")) for s in (join_ref, ref, topic, event))


# ------------------------------------------------------------------ helpers


def _fields_and_data(fields: tuple[str, ...], data: bytes) -> bytes:
    encoded = []
    for value in fields:
        if not isinstance(value, str):
            raise ProtocolError(f"binary frame field must be str, got {type(value).__name__}")
        raw = value.encode("utf-8")
        if len(raw) > MAX_FIELD_BYTES:
            raise ProtocolError(
                f"binary frame field {value[:40]!r}... is {len(raw)} bytes; at most "
                f"{MAX_FIELD_BYTES} fit a one-byte length"
            )
        encoded.append(raw)
    return bytes(len(raw) for raw in encoded) + b"".join(encoded) + data


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise ProtocolError(f"binary payload must be bytes, got {type(data).__name__}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Made once: ``json.loads``/``json.dumps`` given any option build a fresh
# decoder or encoder for every frame.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
# ASCII escapes keep lone surrogates (legal in JSON input) sendable.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _check_ref(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise ProtocolError(f"{name} must be a string or null, got {_json_type(value)}")
    if value is not None:
        _check_unicode(name, value)


def _check_name(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ProtocolError(f"{name} must be a string, got {_json_type(value)}")
    if not value:
        raise ProtocolError(f"{name} must not be empty")
    _check_unicode(name, value)


def _check_unicode(name: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError(f"{name} is not valid Unicode (lone surrogate)") from None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
