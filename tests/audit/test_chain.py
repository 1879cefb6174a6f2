"""The chain's pure functions: canonical bodies, links, timestamps and signatures."""

from __future__ import annotations

import hashlib
import json
import stat
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from workbench.audit import AuditEvent, Signer
from workbench.audit.chain import (
    GENESIS,
    canonical,
    checkpoint_message,
    key_id,
    link,
    load_public_key,
    parse_time,
    signature_ok,
    timestamp,
)

EVENT = AuditEvent(
    action="data.read",
    actor="alice",
    role="researcher",
    tenant="acme",
    dataset="calls",
    purpose="churn model — Q3",
    request_id=7,
    resource="server/alice-7",
    client="10.0.0.5",
    detail={"objects": 3, "prefix": "acme/calls/"},
)

# The bytes the chain hashes for EVENT as seq 42. If this changes, every existing chain
# stops verifying: change SCHEMA_VERSION instead.
EVENT_BODY = (
    '{"action":"data.read","actor":"alice","at":"2026-11-22T10:00:00.000001Z",'
    '"client":"10.0.0.5","dataset":"calls","detail":{"objects":3,"prefix":"acme/calls/"},'
    '"outcome":"ok","purpose":"churn model — Q3","reason":null,"request_id":7,'
    '"resource":"server/alice-7","role":"researcher","seq":42,"tenant":"acme","v":1}'
)


def test_canonical_sorts_keys_drops_spaces_and_keeps_unicode() -> None:
    assert canonical({"b": [1, 2], "a": "é", "c": {"z": None, "y": True}}) == (
        '{"a":"é","b":[1,2],"c":{"y":true,"z":null}}'
    )


def test_canonical_is_independent_of_insertion_order() -> None:
    forward = {f"k{i}": i for i in range(50)}
    backward = dict(reversed(list(forward.items())))
    assert canonical(forward) == canonical(backward)


def test_event_body_is_stable() -> None:
    assert EVENT.body(42, "2026-11-22T10:00:00.000001Z") == EVENT_BODY
    assert json.loads(EVENT_BODY)["seq"] == 42


def test_event_body_equals_the_asdict_encoding() -> None:
    data = asdict(EVENT)
    data.update(v=1, seq=42, at="2026-11-22T10:00:00.000001Z")
    assert EVENT.body(42, "2026-11-22T10:00:00.000001Z") == canonical(data)


def test_event_body_accepts_dataclasses_in_detail() -> None:
    @dataclass
    class Size:
        rows: int

    event = AuditEvent(action="data.read", actor="bob", detail={"size": Size(5)})
    assert json.loads(event.body(1, "t"))["detail"] == {"size": {"rows": 5}}


def test_link_is_sha256_of_previous_newline_body() -> None:
    body = EVENT.body(1, "2026-11-22T10:00:00.000001Z")
    first = link(GENESIS, body)
    assert first == hashlib.sha256(f"{GENESIS}\n{body}".encode()).hexdigest()
    assert link(first, body) != first  # the same body later in the chain links differently
    assert link(GENESIS, body + " ") != first


def test_timestamp_is_fixed_width_utc_and_sorts_as_time() -> None:
    early = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    later = early + timedelta(microseconds=1)
    assert timestamp(early) == "2026-01-02T03:04:05.000006Z"
    assert len(timestamp(early)) == len(timestamp()) == 27
    assert timestamp(early) < timestamp(later)
    assert parse_time(timestamp(early)) == early


def test_timestamp_converts_other_zones_to_utc() -> None:
    berlin = datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert timestamp(berlin) == "2026-06-01T10:00:00.000000Z"


def test_checkpoint_signature_verifies_with_the_public_key() -> None:
    signer = Signer(Ed25519PrivateKey.generate())
    message = checkpoint_message(3, 300, "ab" * 32, timestamp(), "cd" * 64)
    signature = signer.sign(message)
    assert signature_ok(signer.public_key, message, signature)


@pytest.mark.parametrize(
    "tamper",
    [
        "other message",
        "other key",
        "flipped bit",
        "not hex",
    ],
)
def test_checkpoint_signature_rejects(tamper: str) -> None:
    signer = Signer(Ed25519PrivateKey.generate())
    message = checkpoint_message(3, 300, "ab" * 32, "2026-11-22T10:00:00.000000Z", "")
    signature = signer.sign(message)
    key = signer.public_key
    if tamper == "other message":
        message = checkpoint_message(3, 301, "ab" * 32, "2026-11-22T10:00:00.000000Z", "")
    elif tamper == "other key":
        key = Ed25519PrivateKey.generate().public_key()
    elif tamper == "flipped bit":
        signature = f"{int(signature[0], 16) ^ 1:x}" + signature[1:]
    else:
        signature = "zz" + signature[2:]
    assert not signature_ok(key, message, signature)


def test_checkpoint_message_binds_every_field() -> None:
    base = (1, 10, "ab" * 32, "2026-11-22T10:00:00.000000Z", "")
    messages = {checkpoint_message(*base)}
    for i, other in enumerate((2, 11, "ac" * 32, "2026-11-22T10:00:00.000001Z", "x")):
        changed = list(base)
        changed[i] = other
        messages.add(checkpoint_message(*changed))  # type: ignore[arg-type]
    assert len(messages) == 6


def test_signer_from_file_creates_a_private_key_and_its_public_half(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit-signing.key"
    with pytest.raises(FileNotFoundError):
        Signer.from_file(path)
    signer = Signer.from_file(path, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Signer.from_file(path).key_id == signer.key_id  # loads the same key again
    public = load_public_key(path.with_suffix(".pub"))
    assert key_id(public) == signer.key_id == key_id(load_public_key(path))
    assert len(signer.key_id) == 16
    message = b"m"
    assert signature_ok(public, message, signer.sign(message))
