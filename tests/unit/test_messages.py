"""Control-message codec: strict schema, clear refusals, never anything else."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import LocalProtocolError, RemoteProtocolError
from shared.protocol.messages import (
    AGENT_TO_RELAY,
    CONSOLE_TO_RELAY,
    RELAY_TO_AGENT,
    Message,
    decode,
    encode,
)

ALL = frozenset(AGENT_TO_RELAY | RELAY_TO_AGENT | CONSOLE_TO_RELAY)


def test_round_trip() -> None:
    msg = Message("call", {"method": "agent.list", "params": {"x": 1}}, 7)
    assert decode(encode(msg), CONSOLE_TO_RELAY) == msg


def test_unknown_fields_are_ignored() -> None:
    text = json.dumps({"v": 1, "type": "login", "id": None, "body": {"token": "t", "new": 1}})
    assert decode(text, CONSOLE_TO_RELAY).body["token"] == "t"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"v": 2, "type": "login", "body": {"token": "t"}}', "unsupported protocol version"),
        ('{"v": true, "type": "login", "body": {"token": "t"}}', "unsupported protocol version"),
        ('{"v": 1, "type": "bogus", "body": {}}', "unknown message type 'bogus'"),
        ('{"v": 1, "type": "enrolled", "body": {}}', "unknown message type 'enrolled'"),
        ('{"v": 1, "type": "login", "body": {}}', "missing field 'token'"),
        ('{"v": 1, "type": "login", "body": {"token": 5}}', "field 'token' has the wrong type"),
        ('{"v": 1, "type": "login", "id": "x", "body": {"token": "t"}}', "id must be an integer"),
        ('{"v": 1, "type": "login", "body": []}', "body is not an object"),
    ],
)
def test_refusals_say_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(RemoteProtocolError, match=reason):
        decode(text, CONSOLE_TO_RELAY)


def test_binary_and_oversize_are_refused() -> None:
    with pytest.raises(RemoteProtocolError, match="text frames"):
        decode(b"{}", CONSOLE_TO_RELAY)
    big = json.dumps({"v": 1, "type": "login", "body": {"token": "x" * 2000}})
    with pytest.raises(RemoteProtocolError, match="over 1000 bytes"):
        decode(big, CONSOLE_TO_RELAY, max_size=1000)


def test_building_a_bad_message_is_our_bug() -> None:
    with pytest.raises(LocalProtocolError):
        Message("login", {})
    with pytest.raises(LocalProtocolError):
        Message("nope")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(
    kind=st.sampled_from(sorted(ALL)) | st.text(max_size=10),
    body=json_values,
    version=st.sampled_from([1, 1, 1, 2, "1", None]),
    msg_id=st.none() | st.integers() | st.text(max_size=3),
)
def test_fuzzed_envelopes_only_raise_protocol_errors(
    kind: str, body: object, version: object, msg_id: object
) -> None:
    text = json.dumps({"v": version, "type": kind, "id": msg_id, "body": body})
    try:
        msg = decode(text, ALL)
    except RemoteProtocolError:
        return
    assert msg.type in ALL


@given(st.binary(max_size=200) | st.text(max_size=200))
def test_fuzzed_bytes_only_raise_protocol_errors(data: bytes | str) -> None:
    try:
        decode(data, ALL)
    except RemoteProtocolError:
        pass


@pytest.mark.parametrize(
    "text",
    [
        '{"v": 1, "type": "login", "body": {"token": "\\ud800"}}',
        '{"v": 1, "type": "call", "body": {"method": "x", "params": {"\\udfff": 1}}}',
        '{"v": 1, "type": "call", "body": {"method": "x", "params": {"a": ["ok", "\\ud83d"]}}}',
    ],
)
def test_lone_surrogates_are_not_text(text: str) -> None:
    with pytest.raises(RemoteProtocolError, match="invalid Unicode"):
        decode(text, CONSOLE_TO_RELAY)
