"""Walk the chain and the checkpoints; name the first event that was altered or is missing."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Row, select

from workbench.audit.chain import GENESIS, checkpoint_message, key_id, signature_ok
from workbench.audit.models import audit_checkpoints, audit_events

FETCH_ROWS = 5000  # rows per round trip while streaming the chain


@dataclass(frozen=True)
class Verdict:
    ok: bool
    events: int
    checkpoints: int
    bad_seq: int | None = None
    problem: str = ""

    def __str__(self) -> str:
        if self.ok:
            return (
                f"audit chain intact: {self.events} events, "
                f"{self.checkpoints} signed checkpoints verified"
            )
        if self.bad_seq is None:
            return f"audit chain broken: {self.problem}"
        return f"audit chain broken at event {self.bad_seq}: {self.problem}"


def _body_seq(body: str) -> int | None:
    try:
        seq = json.loads(body).get("seq")
    except (ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) else None


def verify(conn: Connection, public_key: Ed25519PublicKey | None) -> Verdict:
    """Check every link, then every checkpoint (signature, chained signatures, and that the
    event it signs is still there with the same hash). Without a key, signatures are not
    checked: only links and that the events the checkpoints name are still the same."""
    # Checkpoints first: each one is written after the events it signs, so on a live log
    # every checkpoint read here signs events the later read will see.
    checkpoints = list(conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.id)))
    wanted = {cp.seq for cp in checkpoints}
    hashes_at: dict[int, str] = {}
    expected, prev, count = 1, GENESIS, 0
    sha = hashlib.sha256
    rows = conn.execution_options(stream_results=True, yield_per=FETCH_ROWS).execute(
        select(audit_events.c.seq, audit_events.c.body, audit_events.c.hash).order_by(
            audit_events.c.seq
        )
    )
    for seq, body, stored in rows:
        if seq != expected:
            return Verdict(False, count, 0, expected, f"event {expected} is missing")
        if sha(f"{prev}\n{body}".encode()).hexdigest() != stored:
            body_seq = _body_seq(body)
            if body_seq is not None and body_seq != seq:
                return Verdict(False, count, 0, seq, f"event {seq} is missing")
            return Verdict(
                False,
                count,
                0,
                seq,
                f"event {seq} was altered (its contents do not match its hash)",
            )
        if seq in wanted:
            hashes_at[seq] = stored
        prev, expected, count = stored, expected + 1, count + 1
    return _verify_checkpoints(checkpoints, public_key, hashes_at, expected - 1)


def _verify_checkpoints(
    checkpoints: list[Row[Any]],
    public_key: Ed25519PublicKey | None,
    hashes_at: dict[int, str],
    last_seq: int,
) -> Verdict:
    events, checked, prev_sig, prev_seq = last_seq, 0, "", 0
    kid = key_id(public_key) if public_key is not None else None
    for expected_id, cp in enumerate(checkpoints, start=1):
        if cp.id != expected_id:
            return Verdict(
                False,
                events,
                checked,
                prev_seq + 1,
                f"signed checkpoint {expected_id} is missing: events after {prev_seq} "
                "lost their signature",
            )
        if public_key is not None:
            if cp.key_id != kid:
                return Verdict(
                    False,
                    events,
                    checked,
                    cp.seq,
                    f"checkpoint {cp.id} was signed by key {cp.key_id}, not {kid}",
                )
            msg = checkpoint_message(cp.id, cp.seq, cp.hash, cp.at, prev_sig)
            if not signature_ok(public_key, msg, cp.signature):
                return Verdict(
                    False,
                    events,
                    checked,
                    cp.seq,
                    f"checkpoint {cp.id} (event {cp.seq}) has a bad signature",
                )
        if cp.seq > last_seq:
            return Verdict(
                False,
                events,
                checked,
                last_seq + 1,
                f"event {last_seq + 1} is missing: events {last_seq + 1}..{cp.seq} were "
                f"signed by checkpoint {cp.id} and have been removed from the tail",
            )
        if hashes_at.get(cp.seq) != cp.hash:
            return Verdict(
                False,
                events,
                checked,
                cp.seq,
                f"event {cp.seq} differs from the one signed by checkpoint {cp.id}: the chain "
                f"was rewritten after event {prev_seq} and its hashes recomputed",
            )
        prev_sig, prev_seq, checked = cp.signature, cp.seq, checked + 1
    return Verdict(True, events, checked)
