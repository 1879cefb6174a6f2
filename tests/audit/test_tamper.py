"""Tampering with the audit log as the database's owner could, and `verify` naming the first
altered or missing event. Also: the append-only triggers, which stop everyone else."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from tests.audit.conftest import Owner
from workbench.audit import AuditEvent, AuditLog, Signer, Verdict, verify
from workbench.audit.chain import GENESIS, checkpoint_message, link

EVENTS = 22  # checkpoints 1..4 sign events 5, 10, 15 and 20; 21 and 22 are not signed yet


@pytest.fixture
def chain(make_log: Callable[..., AuditLog]) -> AuditLog:
    log = make_log(checkpoint_every=10**6, checkpoint_seconds=3600)
    for i in range(1, EVENTS + 1):
        log.record(AuditEvent(action="data.read", actor=f"user{i % 3}", tenant="acme"))
        if i % 5 == 0 and i <= 20:
            assert log.checkpoint(force=True) == i
    return log


def check(engine: Engine, signer: Signer | None) -> Verdict:
    with engine.connect() as conn:
        return verify(conn, signer.public_key if signer else None)


def test_an_untouched_chain_verifies(chain: AuditLog, engine: Engine, signer: Signer) -> None:
    verdict = check(engine, signer)
    assert verdict == Verdict(True, EVENTS, 4)
    assert str(verdict) == f"audit chain intact: {EVENTS} events, 4 signed checkpoints verified"


def test_an_altered_body_is_named(
    chain: AuditLog, engine: Engine, owner: Owner, signer: Signer
) -> None:
    changed = owner.run(
        'UPDATE audit_events SET body = replace(body, \'"tenant":"acme"\', '
        '\'"tenant":"globex"\') WHERE seq = 7'
    )
    assert changed == 1
    # the queryable columns follow the body: they cannot be changed on their own
    assert owner.rows("SELECT tenant FROM audit_events WHERE seq = 7") == [("globex",)]
    verdict = check(engine, signer)
    assert (verdict.ok, verdict.bad_seq) == (False, 7)
    assert "event 7 was altered" in verdict.problem
    assert str(verdict).startswith("audit chain broken at event 7")
    assert check(engine, None).bad_seq == 7  # links alone catch this one


def test_a_rewritten_chain_is_caught_by_the_signed_checkpoint(
    chain: AuditLog, engine: Engine, owner: Owner, signer: Signer
) -> None:
    rows = owner.rows("SELECT seq, body FROM audit_events ORDER BY seq")
    prev = GENESIS
    for seq, body in rows:
        if seq == 7:
            event = json.loads(body)
            event["actor"] = "nobody"
            body = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        prev = link(prev, body)
        if seq >= 7:
            owner.run(
                "UPDATE audit_events SET body = :body, hash = :hash WHERE seq = :seq",
                {"body": body, "hash": prev, "seq": seq},
            )
    verdict = check(engine, signer)
    # every link holds again (no event is named before 10): only the checkpoints can tell
    assert (verdict.ok, verdict.bad_seq, verdict.checkpoints) == (False, 10, 1)
    assert "signed by checkpoint 2" in verdict.problem
    assert "rewritten after event 5" in verdict.problem


def test_a_deleted_event_is_named(
    chain: AuditLog, engine: Engine, owner: Owner, signer: Signer
) -> None:
    assert owner.run("DELETE FROM audit_events WHERE seq = 12") == 1
    verdict = check(engine, signer)
    assert (verdict.ok, verdict.bad_seq) == (False, 12)
    assert verdict.problem == "event 12 is missing"


def test_a_deleted_and_renumbered_event_is_named(
    chain: AuditLog, engine: Engine, owner: Owner, signer: Signer
) -> None:
    owner.run("DELETE FROM audit_events WHERE seq = 12")
    owner.run("UPDATE audit_events SET seq = seq - 1 WHERE seq > 12")
    verdict = check(engine, signer)
    assert (verdict.ok, verdict.bad_seq) == (False, 12)
    assert "event 12 is missing" in verdict.problem


def test_a_deleted_signed_tail_is_named(
    chain: AuditLog, engine: Engine, owner: Owner, signer: Signer
) -> None:
    assert owner.run("DELETE FROM audit_events WHERE seq >= 18") == EVENTS - 17
    verdict = check(engine, signer)
    assert (verdict.ok, verdict.bad_seq) == (False, 18)
    assert verdict.problem.startswith("event 18 is missing: events 18..20 were signed")


def test_a_deleted_checkpoint_is_named(
    chain: AuditLog, engine: Engine, owner: Owner, signer: Signer
) -> None:
    assert owner.run("DELETE FROM audit_checkpoints WHERE id = 2") == 1
    verdict = check(engine, signer)
    assert (verdict.ok, verdict.bad_seq) == (False, 6)
    assert verdict.problem.startswith("signed checkpoint 2 is missing")


def test_a_renumbered_checkpoint_fails_its_signature(
    chain: AuditLog, engine: Engine, owner: Owner, signer: Signer
) -> None:
    owner.run("DELETE FROM audit_checkpoints WHERE id = 2")
    owner.run("UPDATE audit_checkpoints SET id = id - 1 WHERE id > 2")
    verdict = check(engine, signer)
    assert (verdict.ok, verdict.bad_seq) == (False, 15)
    assert "bad signature" in verdict.problem


@pytest.mark.parametrize("claimed_key", ["theirs", "ours"])
def test_a_checkpoint_signed_with_another_key_is_named(
    claimed_key: str, chain: AuditLog, engine: Engine, owner: Owner, signer: Signer
) -> None:
    attacker = Signer(Ed25519PrivateKey.generate())
    (prev_sig,) = owner.rows("SELECT signature FROM audit_checkpoints WHERE id = 2")[0]
    ((cid, seq, hash_, at),) = owner.rows(
        "SELECT id, seq, hash, at FROM audit_checkpoints WHERE id = 3"
    )
    forged = attacker.sign(checkpoint_message(cid, seq, hash_, at, prev_sig))
    kid = attacker.key_id if claimed_key == "theirs" else signer.key_id
    owner.run(
        "UPDATE audit_checkpoints SET signature = :sig, key_id = :kid WHERE id = 3",
        {"sig": forged, "kid": kid},
    )
    verdict = check(engine, signer)
    assert (verdict.ok, verdict.bad_seq) == (False, 15)
    expected = "not " + signer.key_id if claimed_key == "theirs" else "bad signature"
    assert expected in verdict.problem


@pytest.mark.parametrize("table", ["audit_events", "audit_checkpoints"])
@pytest.mark.parametrize("verb", ["UPDATE", "DELETE"])
def test_the_triggers_refuse_update_and_delete(
    chain: AuditLog, engine: Engine, table: str, verb: str, signer: Signer
) -> None:
    sql = {
        "UPDATE": f"UPDATE {table} SET hash = hash WHERE seq = 5",
        "DELETE": f"DELETE FROM {table} WHERE seq = 5",
    }[verb]
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(sql))
    assert check(engine, signer).ok


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
@pytest.mark.parametrize("table", ["audit_events", "audit_checkpoints"])
def test_the_triggers_refuse_truncate(
    chain: AuditLog, engine: Engine, table: str, signer: Signer
) -> None:
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {table} CASCADE"))
    assert check(engine, signer).ok
