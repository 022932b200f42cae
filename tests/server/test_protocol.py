"""The V2 serializer codec: round-trips, the exact frames of the protocol doc,
and a clear ProtocolError for every malformed input."""

from __future__ import annotations

import json

import pytest

from server.protocol import (
    BINARY_PUSH_HEADER,
    Message,
    OkReply,
    ProtocolError,
    binary_push_overhead,
    decode_binary,
    decode_text,
    encode_binary,
    encode_binary_broadcast,
    encode_binary_reply,
    encode_binary_server_push,
    encode_close,
    encode_error,
    encode_reply,
    encode_text,
)

pytestmark = [pytest.mark.timeout(10), pytest.mark.pure]


# ------------------------------------------------------------------ text


def test_decode_join_frame_from_the_trace():
    frame = (
        '["4","4","lv:phx-F1abc","phx_join",{"url":"http://127.0.0.1:41071/upload",'
        '"params":{"_csrf_token":"CSRF","_mounts":0,"_mount_attempts":0},'
        '"session":"SESSION.TOKEN","static":"STATIC.TOKEN","sticky":false}]'
    )
    msg = decode_text(frame)
    assert msg == Message(
        "4",
        "4",
        "lv:phx-F1abc",
        "phx_join",
        {
            "url": "http://127.0.0.1:41071/upload",
            "params": {"_csrf_token": "CSRF", "_mounts": 0, "_mount_attempts": 0},
            "session": "SESSION.TOKEN",
            "static": "STATIC.TOKEN",
            "sticky": False,
        },
    )


def test_decode_heartbeat_has_null_join_ref():
    msg = decode_text('[null,"7","phoenix","heartbeat",{}]')
    assert msg == Message(None, "7", "phoenix", "heartbeat", {})


@pytest.mark.parametrize(
    "msg",
    [
        Message("1", "2", "lv:x", "event", {"a": [1, 2, {"b": None}], "c": "ü"}),
        Message(None, "5", "phoenix", "heartbeat", {}),
        Message(None, None, "lvu:0", "phx_close", {}),
        Message("12", "13", "lvu:0", "phx_reply", {"status": "ok", "response": {}}),
    ],
)
def test_text_round_trip(msg):
    assert decode_text(encode_text(msg)) == msg


def test_encode_reply_matches_the_wire():
    frame = encode_reply("12", "13", "lvu:0", "ok", {})
    assert json.loads(frame) == [
        "12", "13", "lvu:0", "phx_reply", {"status": "ok", "response": {}}
    ]
    err = encode_reply(None, "3", "nope", "error", {"reason": "unmatched topic"})
    assert json.loads(err) == [
        None, "3", "nope", "phx_reply",
        {"status": "error", "response": {"reason": "unmatched topic"}},
    ]


def test_close_and_error_use_join_ref_as_ref():
    assert json.loads(encode_close("12", "lvu:0")) == ["12", "12", "lvu:0", "phx_close", {}]
    assert json.loads(encode_error("12", "lvu:0")) == [
        "12", "12", "lvu:0", "phx_error", {"reason": "channel_crash"}
    ]


def test_encode_text_escapes_lone_surrogates_so_the_frame_is_sendable():
    msg = decode_text('["1","1","lv:x","event",{"name":"\\ud800"}]')
    frame = encode_text(Message("1", "1", "lv:x", "phx_reply", msg.payload))
    frame.encode("utf-8")  # would raise if the surrogate were raw


def test_encode_text_rejects_binary_and_unencodable_payloads():
    with pytest.raises(ProtocolError, match="binary payloads"):
        encode_text(Message("1", "1", "t", "e", b"x"))
    with pytest.raises(ProtocolError, match="cannot be encoded"):
        encode_text(Message("1", "1", "t", "e", {"x": object()}))
    with pytest.raises(ProtocolError, match="cannot be encoded"):
        encode_text(Message("1", "1", "t", "e", {"x": float("nan")}))


@pytest.mark.parametrize(
    "frame, match",
    [
        ("", "not valid JSON"),
        ("[1,2", "not valid JSON"),
        ("not json", "not valid JSON"),
        ('["1","1","t","e",{"x":NaN}]', "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
        ('{"topic":"t"}', "must be a JSON array"),
        ('"hello"', "must be a JSON array"),
        ("[]", "must have 5 elements, got 0"),
        ('["1","1","t","e"]', "must have 5 elements, got 4"),
        ('["1","1","t","e",{},1]', "must have 5 elements, got 6"),
        ('[1,"1","t","e",{}]', "join_ref must be a string or null, got number"),
        ('["1",{},"t","e",{}]', "ref must be a string or null, got object"),
        ('["1","1",null,"e",{}]', "topic must be a string, got null"),
        ('["1","1","","e",{}]', "topic must not be empty"),
        ('["1","1","t",5,{}]', "event must be a string, got number"),
        ('["1","1","t","",{}]', "event must not be empty"),
        ('["1","1","t","e",[]]', "payload must be a JSON object, got array"),
        ('["1","1","t","e","x"]', "payload must be a JSON object, got string"),
        ('["1","1","t","e",null]', "payload must be a JSON object, got null"),
        ('["1","1","\\udc80","e",{}]', "topic is not valid Unicode"),
    ],
)
def test_decode_text_malformed(frame, match):
    with pytest.raises(ProtocolError, match=match):
        decode_text(frame)


def test_decode_text_rejects_non_str():
    with pytest.raises(ProtocolError, match="must be str"):
        decode_text(b'["1","1","t","e",{}]')


def test_protocol_error_is_a_value_error():
    assert issubclass(ProtocolError, ValueError)


# ---------------------------------------------------------------- binary


def _push(join_ref: bytes, ref: bytes, topic: bytes, event: bytes, data: bytes) -> bytes:
    return (
        bytes([0, len(join_ref), len(ref), len(topic), len(event)])
        + join_ref + ref + topic + event + data
    )


def test_decode_binary_chunk_push():
    data = bytes(range(256)) * 10
    frame = _push(b"12", b"13", b"lvu:0", b"chunk", data)
    msg = decode_binary(frame)
    assert msg == Message("12", "13", "lvu:0", "chunk", data)
    # The payload is a view of the frame: the chunk is not copied out of it.
    assert isinstance(msg.payload, memoryview) and msg.payload.readonly and msg.payload.obj is frame


def test_decode_binary_accepts_bytearray_and_memoryview_and_empty_data():
    frame = _push(b"1", b"2", b"lvu:9", b"chunk", b"")
    assert decode_binary(bytearray(frame)).payload == b""
    assert decode_binary(memoryview(frame)).topic == "lvu:9"


@pytest.mark.parametrize(
    "msg",
    [
        Message("12", "13", "lvu:0", "chunk", b"\x00\x01\xff" * 1000),
        Message("1", "2", "lvu:ü", "chunk", b""),
        Message("j" * 255, "r" * 255, "t" * 255, "e" * 255, b"payload"),
    ],
)
def test_binary_round_trip(msg):
    frame = encode_binary(msg)
    assert decode_binary(frame) == msg
    overhead = binary_push_overhead(msg.join_ref, msg.ref, msg.topic, msg.event)
    assert len(frame) == overhead + len(msg.payload)


def test_binary_overhead_default_event():
    assert binary_push_overhead("12", "13", "lvu:0") == BINARY_PUSH_HEADER + 2 + 2 + 5 + 5


def test_encode_binary_field_too_long():
    with pytest.raises(ProtocolError, match="at most 255"):
        encode_binary(Message("1", "1", "t" * 256, "chunk", b""))
    with pytest.raises(ProtocolError, match="binary payload must be bytes"):
        encode_binary(Message("1", "1", "t", "chunk", {"x": 1}))


def test_server_binary_kinds_layout():
    push = encode_binary_server_push("4", "lv:x", "ev", b"DATA")
    assert push == bytes([0, 1, 4, 2]) + b"4lv:xevDATA"
    reply = encode_binary_reply("4", "9", "lv:x", "ok", b"DATA")
    assert reply == bytes([1, 1, 1, 4, 2]) + b"49lv:xokDATA"
    bcast = encode_binary_broadcast("lv:x", "ev", b"DATA")
    assert bcast == bytes([2, 4, 2]) + b"lv:xevDATA"


@pytest.mark.parametrize(
    "frame, match",
    [
        (b"", "binary frame is empty"),
        (b"\x00", "header truncated: need 5 bytes, got 1"),
        (b"\x00\x01\x01\x01", "header truncated: need 5 bytes, got 4"),
        (bytes([1, 1, 1, 1, 1]) + b"abcd", "kind 1 is server-to-client only"),
        (bytes([2, 1, 1]) + b"ab", "kind 2 is server-to-client only"),
        (bytes([7, 0, 0, 0, 0]), "unknown binary frame kind 7"),
        (bytes([0, 10, 0, 0, 0]) + b"abc", "join_ref length 10 at offset 5 runs past"),
        (bytes([0, 1, 1, 200, 5]) + b"12lvu:0chunk", "topic length 200 at offset 7 runs past"),
        (bytes([0, 1, 1, 5, 9]) + b"12lvu:0chunk", "event length 9 at offset 12 runs past"),
        (_push(b"1", b"2", b"lvu:\xff", b"chunk", b"x"), "topic is not valid UTF-8"),
        (_push(b"\xc3", b"2", b"lvu:0", b"chunk", b"x"), "join_ref is not valid UTF-8"),
        (_push(b"1", b"\x80", b"lvu:0", b"chunk", b"x"), "ref is not valid UTF-8"),
        (_push(b"1", b"2", b"lvu:0", b"\xfe", b"x"), "event is not valid UTF-8"),
        (_push(b"1", b"2", b"", b"chunk", b"x"), "topic is empty"),
        (_push(b"1", b"2", b"lvu:0", b"", b"x"), "event is empty"),
    ],
)
def test_decode_binary_malformed(frame, match):
    with pytest.raises(ProtocolError, match=match):
        decode_binary(frame)


def test_ok_reply_is_the_encoded_reply_spliced():
    for join_ref, topic in [("4", "lvu:0"), (None, 'x"y'), ("\x00", "é\ud800")]:
        ok_reply = OkReply(join_ref, topic)
        for ref in ["12", None, 'a"b', "é", "\x00"]:
            assert ok_reply.frame(ref) == encode_reply(join_ref, ref, topic, "ok", {})
