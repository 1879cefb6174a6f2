"""The state machine and separation-of-duties rules, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import make_config
from workbench.actor import Actor
from workbench.config import Catalog, RequestPolicy
from workbench.errors import Conflict, Forbidden, Invalid, NotFound
from workbench.requests.models import AccessRequest, Decision, State
from workbench.requests.rules import NewRequest, check_decision, check_new
from workbench.scopes import ROLE_SCOPES

CFG = make_config(
    Catalog={
        "tenants": {
            "acme": {
                "managers": ["maria"],
                "datasets": {"calls": {}, "accounts": {"kind": "table"}},
            },
            "initech": {
                "managers": ["maria", "mike"],
                "approvals_required": 2,
                "datasets": {"tickets": {}},
            },
        }
    }
)
CATALOG = Catalog(config=CFG).build()
POLICY = RequestPolicy(max_hours=48, max_gpu_hours=10)


def actor(name: str, role: str) -> Actor:
    return Actor(name, frozenset(ROLE_SCOPES[role]))


ALICE = actor("alice", "researcher")
MARIA = actor("maria", "manager")
MIKE = actor("mike", "manager")


def new(**kw: object) -> NewRequest:
    base: dict[str, object] = dict(
        tenant="acme", datasets=["calls"], purpose="churn model", profile="cpu-small", hours=8
    )
    base.update(kw)
    return NewRequest(**base)  # type: ignore[arg-type]


def test_valid_request_is_normalised() -> None:
    checked = check_new(ALICE, new(datasets=["acme/calls", "calls", "accounts"]), CATALOG, POLICY)
    assert checked.datasets == ["calls", "accounts"]
    assert checked.gpu_hours == 0
    gpu = check_new(ALICE, new(profile="gpu-1", hours=4), CATALOG, POLICY)
    assert gpu.gpu_hours == 4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tenant": "umbrella"}, "unknown tenant 'umbrella'"),
        ({"datasets": ["nope"]}, "has no dataset 'nope'"),
        ({"datasets": ["globex/calls"]}, "belongs to another tenant"),
        ({"datasets": []}, "at least one dataset"),
        ({"purpose": "   "}, "purpose is required"),
        ({"profile": "gpu-9000"}, "unknown profile"),
        ({"hours": 0}, "hours must be between"),
        ({"hours": 49}, "hours must be between"),
        ({"profile": "gpu-1", "gpu_hours": 11}, "gpu_hours must be between"),
        ({"gpu_hours": 1}, "has no GPU"),
    ],
)
def test_bad_requests_say_what_is_wrong(change: dict[str, object], message: str) -> None:
    with pytest.raises(Invalid, match=message) as err:
        check_new(ALICE, new(**change), CATALOG, POLICY)
    assert err.value.action == "request.file"


def test_only_researchers_file() -> None:
    with pytest.raises(Forbidden):
        check_new(Actor("sam", frozenset(ROLE_SCOPES["security"])), new(), CATALOG, POLICY)


def req(
    state: str = State.PENDING, tenant: str = "acme", approvers: tuple[str, ...] = ()
) -> AccessRequest:
    r = AccessRequest(
        id=7,
        requester="alice",
        tenant=tenant,
        datasets=["calls"],
        purpose="p",
        profile="cpu-small",
        profile_spec={},
        hours=1,
        gpu_hours=0,
        approvals_required=2 if tenant == "initech" else 1,
        state=state,
        created_at=datetime.now(UTC),
    )
    r.decisions = [
        Decision(actor=a, kind="approve", comment="", at=datetime.now(UTC)) for a in approvers
    ]
    return r


def test_nobody_approves_their_own_request() -> None:
    maria_req = req()
    maria_req.requester = "maria"
    with pytest.raises(Forbidden, match="your own request"):
        check_decision(MARIA, maria_req, "approve", CATALOG)


def test_managers_decide_only_for_tenants_they_govern() -> None:
    with pytest.raises((Forbidden, NotFound)):
        check_decision(MIKE, req(), "approve", CATALOG)
    check_decision(MIKE, req(tenant="initech"), "approve", CATALOG)


def test_researchers_cannot_approve() -> None:
    bob = actor("bob", "researcher")
    with pytest.raises(NotFound):  # bob cannot even see alice's request
        check_decision(bob, req(), "approve", CATALOG)


def test_same_manager_cannot_approve_twice() -> None:
    with pytest.raises(Conflict, match="already approved"):
        check_decision(MARIA, req(tenant="initech", approvers=("maria",)), "approve", CATALOG)
    check_decision(MIKE, req(tenant="initech", approvers=("maria",)), "approve", CATALOG)


@pytest.mark.parametrize("kind", ["approve", "deny"])
@pytest.mark.parametrize("state", [State.APPROVED, State.DENIED, State.REVOKED, State.EXPIRED])
def test_only_pending_requests_are_decided(kind: str, state: str) -> None:
    with pytest.raises(Conflict, match="only pending"):
        check_decision(MARIA, req(state), kind, CATALOG)


def test_revoke_and_withdraw() -> None:
    check_decision(MARIA, req(State.APPROVED), "revoke", CATALOG)
    check_decision(ALICE, req(State.APPROVED), "revoke", CATALOG)  # giving up one's own access
    with pytest.raises(Conflict):
        check_decision(MARIA, req(State.PENDING), "revoke", CATALOG)
    check_decision(ALICE, req(), "withdraw", CATALOG)
    with pytest.raises(Forbidden):
        check_decision(MARIA, req(), "withdraw", CATALOG)
