"""The diagnostics schema: round trip, tolerance within a major version, clear
refusals, and the caps that keep a hostile agent from bloating or injecting."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.capped_json import clean_text
from shared.diagnostics import (
    MAX_ENCODED_SIZE,
    MAX_LISTENERS,
    MAX_NAME_LENGTH,
    SECTION_NAMES,
    Listener,
    Section,
    Snapshot,
    SocketsInfo,
    decode,
    encode,
    from_json,
    sanitize,
    sanitize_section,
    sections,
    to_json,
    with_sections,
)
from shared.errors import LocalProtocolError, RemoteProtocolError
from tests.unit.diagnostics_samples import TAKEN_AT, healthy

Doc = dict[str, Any]


def test_round_trip_through_bytes_and_dicts() -> None:
    snap = healthy()
    assert decode(encode(snap)) == snap
    assert from_json(json.loads(json.dumps(to_json(snap)))) == snap


def test_section_names_match_the_snapshot_fields() -> None:
    assert [name for name, _ in sections(healthy())] == list(SECTION_NAMES)
    assert all(isinstance(section, Section) for _, section in sections(healthy()))


def test_missing_sections_read_as_not_reported() -> None:
    snap = from_json({"schema_version": "1.0", "taken_at": "2026-01-05T09:00:00Z"})
    assert snap.taken_at == TAKEN_AT
    assert (snap.disks.status, snap.disks.reason, snap.disks.data) == (
        "unavailable",
        "not reported",
        None,
    )


def test_unknown_fields_and_newer_minor_versions_are_tolerated() -> None:
    doc = to_json(healthy())
    doc["schema_version"] = "1.7"
    doc["gpu"] = {"status": "ok", "data": {"temperature": 80}}
    doc["disks"]["collector_version"] = 3
    doc["disks"]["data"]["mounts"][0]["encrypted"] = True
    snap = from_json(doc)
    assert snap.schema_version == "1.7"
    assert snap.disks == healthy().disks


@pytest.mark.parametrize("version", ["2.0", "0.9", "x.1", "", "10"])
def test_another_major_version_is_refused(version: str) -> None:
    doc = to_json(healthy()) | {"schema_version": version}
    with pytest.raises(
        RemoteProtocolError, match=r"schema .* is not supported \(this build reads 1\.x\)"
    ):
        from_json(doc)


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    """A mutation putting ``value`` at a dotted path (``disks.data.mounts.0.total_bytes``)."""

    def mutate(doc: Doc) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


def _delete(path: str) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for part in parents:
            target = target[part]
        del target[last]

    return mutate


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_delete("schema_version"), "has no schema_version"),
        (_delete("taken_at"), "snapshot.taken_at is missing"),
        (_delete("disks.status"), "snapshot.disks.status is missing"),
        (_set("taken_at", "yesterday"), "snapshot.taken_at must be an ISO 8601 time, not a string"),
        (_set("disks.status", "fine"), "snapshot.disks.status must be one of ok, unavailable"),
        (
            _set("disks.data.mounts.0.total_bytes", "5"),
            r"snapshot.disks.data.mounts\[0\].total_bytes must be a 64-bit integer, not a string",
        ),
        (_set("disks.data.mounts.0.total_bytes", True), "must be a 64-bit integer, not a boolean"),
        (_set("disks.data.mounts.0.total_bytes", 1.5), "must be a 64-bit integer, not a number"),
        (_set("disks.data.mounts.0.total_bytes", 2**64), "must be a 64-bit integer"),
        (_set("disks.data.mounts.0.read_only", 0), "must be a boolean, not a number"),
        (
            _set("disks.data.mounts", {"/": 1}),
            "snapshot.disks.data.mounts must be a list, not an object",
        ),
        (_set("disks.data", [1]), "snapshot.disks.data must be an object, not a list"),
        (_set("memory.data.percent", "high"), "must be a finite number, not a string"),
        (
            _set("findings", [{"severity": "doom"}]),
            r"snapshot.findings\[0\].severity must be one of",
        ),
        (_set("sockets.data.listeners.0.pid", None), None),  # optional: null is fine
    ],
)
def test_malformed_documents_are_refused_with_the_field_named(
    mutate: Callable[[Doc], None], message: str | None
) -> None:
    doc = to_json(healthy())
    mutate(doc)
    if message is None:
        from_json(doc)
        return
    with pytest.raises(RemoteProtocolError, match=message):
        from_json(doc)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"snapshot"', "not a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (
            b'{"schema_version": "1.0", "taken_at": "2026-01-05T09:00:00Z",'
            b' "memory": {"status": "ok", "data": {"percent": NaN}}}',
            "not valid JSON",
        ),
        (
            b'{"schema_version": "1.0", "taken_at": "2026-01-05T09:00:00Z",'
            b' "memory": {"status": "ok", "data": {"percent": 1e999}}}',
            "must be a finite number",
        ),
    ],
)
def test_bad_bytes_are_refused(text: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        decode(text)


def test_oversize_documents_are_refused_before_parsing() -> None:
    blob = b'{"schema_version": "1.0", "pad": "' + b"x" * MAX_ENCODED_SIZE + b'"}'
    with pytest.raises(RemoteProtocolError, match=r"is \d+ bytes, over the 262144-byte limit"):
        decode(blob)
    doc = to_json(healthy()) | {"pad": "x" * MAX_ENCODED_SIZE}
    with pytest.raises(RemoteProtocolError, match="over the 262144-byte limit"):
        from_json(doc)


def test_from_json_refuses_values_json_cannot_hold() -> None:
    with pytest.raises(RemoteProtocolError, match="not a JSON document"):
        from_json({"schema_version": "1.0", "taken_at": object()})


def test_lists_are_cut_to_their_caps() -> None:
    doc = to_json(healthy())
    one = doc["sockets"]["data"]["listeners"][0]
    doc["sockets"]["data"]["listeners"] = [one | {"port": p} for p in range(1, 1001)]
    snap = from_json(doc)
    assert snap.sockets.data is not None
    assert len(snap.sockets.data.listeners) == MAX_LISTENERS
    assert snap.sockets.data.listeners[-1].port == MAX_LISTENERS


def test_strings_are_cut_and_cleaned() -> None:
    doc = to_json(healthy())
    doc["system"]["data"]["hostname"] = "h" * 10_000
    doc["disks"]["data"]["mounts"][0]["mountpoint"] = (
        "/mnt/\x1b[2J\x1b]0;owned\x07evil\n\u202eexe.txt\x00"
    )
    snap = from_json(doc)
    assert snap.system.data is not None and snap.disks.data is not None
    assert len(snap.system.data.hostname) == MAX_NAME_LENGTH
    assert snap.system.data.hostname.endswith("…")
    assert snap.disks.data.mounts[0].mountpoint == "/mnt/evil exe.txt"  # whole escape sequences go


def test_lone_surrogates_from_json_escapes_are_dropped() -> None:
    text = encode(healthy()).replace(b'"pc-01"', b'"pc\\ud800-01"')
    snap = decode(text)
    assert snap.system.data is not None
    assert snap.system.data.hostname == "pc-01"
    encode(snap)  # and it encodes again as valid UTF-8


def test_sanitize_applies_the_caps_to_a_locally_built_snapshot() -> None:
    listeners = tuple(Listener("tcp", "0.0.0.0", p, None, "x" * 500) for p in range(1, 400))
    info = SocketsInfo(listeners=listeners, listener_count=len(listeners))
    snap = sanitize(with_sections(healthy(), {"sockets": Section(status="ok", data=info)}))
    assert snap.sockets.data is not None
    assert len(snap.sockets.data.listeners) == MAX_LISTENERS
    assert snap.sockets.data.listener_count == 399
    assert {len(item.process) for item in snap.sockets.data.listeners} == {MAX_NAME_LENGTH}


def test_a_bad_local_section_is_a_local_error() -> None:
    bad: Section[Any] = Section(status="ok", data=SocketsInfo(listener_count="many"))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="listener_count must be a 64-bit integer"):
        sanitize_section("sockets", bad)
    with pytest.raises(LocalProtocolError, match="no diagnostics section named 'gpu'"):
        sanitize_section("gpu", bad)


def test_encode_refuses_to_send_an_oversize_snapshot() -> None:
    listeners = tuple(
        Listener("tcp", "\U0001d54f" * 128, p, None, "\U0001d54f" * 128) for p in range(256)
    )
    snap = with_sections(
        Snapshot(taken_at=TAKEN_AT),
        {"sockets": Section(status="ok", data=SocketsInfo(listeners=listeners))},
    )
    with pytest.raises(LocalProtocolError, match="over the 262144-byte limit"):
        encode(snap)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
        ),
        max_leaves=30,
    )
)
def test_arbitrary_json_is_either_parsed_or_refused_cleanly(value: Any) -> None:
    doc = to_json(healthy())
    doc["disks"]["data"]["mounts"][0] = value
    try:
        from_json(doc)
    except RemoteProtocolError:
        pass


BANNED = {*range(0x20), *range(0x7F, 0xA0), *range(0xD800, 0xE000), 0x202E, 0x2066, 0x2028}


@given(st.text())
def test_clean_text_leaves_no_control_bidi_or_surrogate_characters(text: str) -> None:
    cleaned = clean_text(text, 64)
    assert len(cleaned) <= 64
    assert not {ord(ch) for ch in cleaned} & BANNED
