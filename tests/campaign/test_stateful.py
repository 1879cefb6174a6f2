"""A Hypothesis state machine over the REST API: researchers, managers and tenants file,
approve, deny, withdraw, revoke, expire, ask for grants, submit and cancel jobs (whose own
tokens ask for grants too), make artifacts and promote them (across tenants, too), and erase
tenants, in any order.

Invariants, checked after every step:
- nobody ever holds a grant, a job, an artifact upload credential or a promotion outside an
  approved, unexpired request of their own for that tenant (each succeeds exactly when the
  model says it may); a job's token gets grants only under its own request while it runs;
- a job runs only while its request may be used (the API's state is the model's; a job of an
  ended request may run on until the reaper's next round, never past it);
- an artifact is never promoted for a tenant other than the one its lineage holds, and every
  artifact whose lineage reaches an erased tenant is quarantined;
- after a tenant is erased nobody files a request, gets a grant or runs a job for it;
- decisions keep separation of duties (nobody decides their own request, managers decide only
  for tenants they govern, a two-approval tenant needs two different managers);
- every issued credential (grants of people and of jobs, artifact upload keys) and every job
  has a committed audit event;
- no call ever gets a 5xx.

The service runs in-process (the app on a real port, the fake hub of tests/mocking.py) over a
fresh SQLite per example, against the campaign's real OpenBao and SeaweedFS; jobs are held by
`HeldJobBackend` (the real jobs service and tokens, no process), erasure is the operator's
real one (it deletes the tenant's objects and secrets in the shared stores, which are seeded
and provisioned again afterwards). Quick by default (25 examples of 20 steps);
WORKBENCH_CAMPAIGN=long runs 200 of 50.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import nbformat  # noqa: F401 (imported before any job's deadline runs: see the campaign doc)
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)
from sqlalchemy import text

from tests.campaign.conftest import Stores, profile
from tests.campaign.held import HeldJobBackend
from tests.conftest import Service, make_config
from workbench.config import settings_for
from workbench.db import utcnow
from workbench.embedded.seaweed import admin_client
from workbench.erasure.operator import Operator
from workbench.requests.models import AccessRequest
from workbench.service.context import Workbench

RESEARCHERS = ("alice", "bob")
MANAGERS = ("maria", "mike")
FILERS = (*RESEARCHERS, *MANAGERS)  # managers may ask for access too, never approve their own
# who governs what, and how many approvals each needs (the campaign catalog)
GOVERNS = {"acme": {"maria", "mike"}, "globex": {"maria"}, "initech": {"maria", "mike"}}
APPROVALS = {"acme": 1, "globex": 1, "initech": 2}
TENANTS = tuple(GOVERNS)
NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    "cells": [
        {
            "cell_type": "code",
            "id": "c1",
            "metadata": {},
            "source": "pass",
            "outputs": [],
            "execution_count": None,
        }
    ],
}


@dataclass
class Req:
    id: int
    requester: str
    tenant: str
    state: str = "pending"
    approvals: set[str] = field(default_factory=set)
    expired: bool = False  # its expires_at moved into the past

    @property
    def grantable(self) -> bool:
        return self.state == "approved" and not self.expired


@dataclass
class JobModel:
    id: int
    user: str
    request: Req
    token: str
    running: bool = True


@dataclass
class Art:
    id: int
    maker: str
    tenant: str
    lineage: set[str]  # tenants
    stage: str = "candidate"


def allowed_under(req: Req | None, user: str, tenant: str | None = None) -> bool:
    """May `user` use `req` (for `tenant`) now: their own, approved, unexpired request."""
    return (
        req is not None
        and req.requester == user
        and (tenant is None or req.tenant == tenant)
        and req.grantable
    )


class AccessMachine(RuleBasedStateMachine):
    stores: Stores  # set by the test

    requests = Bundle("requests")
    jobs = Bundle("jobs")
    artifacts = Bundle("artifacts")

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="wb-stateful-"))
        cfg = make_config(**self.stores.config())
        cfg.AuditSettings.checkpoint_every = 50
        cfg.ServiceSettings.db_url = f"sqlite:///{self.tmp / 'workbench.sqlite'}"
        self.wb = Workbench.open(settings_for(self.tmp / "home", cfg))
        self.backend = HeldJobBackend()
        self.wb.jobs.backend = self.backend
        self.service = Service(self.wb)
        self.clients: dict[str, httpx.Client] = {}
        self.model: dict[int, Req] = {}
        self.job_model: dict[int, JobModel] = {}
        self.art_model: dict[int, Art] = {}
        self.erased: set[str] = set()
        # (user, request, grant id, tenant) of every credential handed out
        self.issued: list[tuple[str, int, int, str]] = []
        self.uploads: list[tuple[str, int, str]] = []  # (user, request, tenant)

    def teardown(self) -> None:
        for c in self.clients.values():
            c.close()
        self.service.stop()
        self.wb.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def api(self, user: str) -> httpx.Client:
        if user not in self.clients:
            self.clients[user] = self.service.client(user)
        return self.clients[user]

    def call(self, user: str, method: str, path: str, **kw: Any) -> httpx.Response:
        r = self.api(user).request(method, path, **kw)
        return self.checked(r, user, method, path)

    def checked(self, r: httpx.Response, who: str, method: str, path: str) -> httpx.Response:
        assert r.status_code < 500, f"{who} {method} {path}: {r.status_code} {r.text}"
        if r.status_code >= 400:
            assert r.json().get("error"), r.text  # a message a person can act on
        return r

    def as_job(self, job: JobModel, method: str, path: str, **kw: Any) -> httpx.Response:
        with self.service.client() as c:
            c.headers["Authorization"] = f"token {job.token}"
            return self.checked(c.request(method, path, **kw), f"job {job.id}", method, path)

    def owner(self, rid: int, user: str, tenant: str) -> tuple[str, str]:
        """The requester and tenant of `rid` (when known): half of the calls are made by the
        one who may make them, so that the machine reaches the states where things succeed."""
        req = self.model.get(rid)
        return (req.requester, req.tenant) if req else (user, tenant)

    def requests_ended(self) -> None:
        """What the service does whenever a request ends (its on_end hooks reconcile jobs):
        every job whose request may no longer be used stops."""
        for job in self.job_model.values():
            if not job.request.grantable:
                job.running = False

    # -- filing and deciding ---------------------------------------------------------------

    @rule(
        target=requests,
        user=st.sampled_from((*FILERS, "eve", "sam")),
        tenant=st.sampled_from(TENANTS),
    )
    def file(self, user: str, tenant: str) -> int:
        body = {
            "tenant": tenant,
            "datasets": ["calls"],
            "purpose": "stateful campaign",
            "profile": "cpu-small",
            "hours": 4,
        }
        r = self.call(user, "POST", "requests", json=body)
        if user not in FILERS or tenant in self.erased:
            assert r.status_code in (403, 409, 400), r.text
            return -1  # a request that does not exist: every later call on it is refused
        assert r.status_code == 201, r.text
        rid = int(r.json()["id"])
        assert rid not in self.model
        self.model[rid] = Req(rid, user, tenant)
        return rid

    @rule(target=requests, user=st.sampled_from(FILERS), tenant=st.sampled_from(TENANTS))
    def file_and_approve(self, user: str, tenant: str) -> int:
        """A request filed and approved by the managers it needs (none of them its
        requester): a short way to the states where grants, jobs and artifacts happen."""
        rid = self.file(user, tenant)
        if rid > 0:
            for manager in sorted(GOVERNS[tenant] - {user})[: APPROVALS[tenant]]:
                self.decide(manager, rid, "approve")
        return rid

    def decide(self, user: str, rid: int, kind: str) -> None:
        r = self.call(user, "POST", f"requests/{rid}/{kind}", json={"comment": "campaign"})
        req = self.model.get(rid)
        if r.status_code != 200:
            return
        assert req is not None, f"{kind} of a request that does not exist succeeded"
        state = r.json()["state"]
        if kind in ("approve", "deny"):
            assert user in GOVERNS[req.tenant], f"{user} decided for {req.tenant}"
            assert user != req.requester, f"{user} decided their own request"
            assert req.state == "pending" and not req.expired, f"{kind} of a {req.state} request"
        if kind == "approve":
            assert user not in req.approvals, f"{user} approved request {rid} twice"
            req.approvals.add(user)
            expected = "approved" if len(req.approvals) >= APPROVALS[req.tenant] else "pending"
            assert state == expected, (state, expected, req)
        elif kind == "deny":
            assert state == "denied"
        elif kind == "revoke":
            assert user == req.requester or user in GOVERNS[req.tenant]
            assert req.state == "approved", f"revoke of a {req.state} request"
            assert state == "revoked"
        elif kind == "withdraw":
            assert user == req.requester and req.state == "pending"
        req.state = state
        if state in ("revoked", "denied", "withdrawn"):
            self.requests_ended()

    @rule(user=st.sampled_from((*MANAGERS, *RESEARCHERS)), rid=requests)
    def approve(self, user: str, rid: int) -> None:
        self.decide(user, rid, "approve")

    @rule(user=st.sampled_from(MANAGERS), rid=requests)
    def deny(self, user: str, rid: int) -> None:
        self.decide(user, rid, "deny")

    @rule(user=st.sampled_from((*MANAGERS, *RESEARCHERS)), rid=requests)
    def revoke(self, user: str, rid: int) -> None:
        self.decide(user, rid, "revoke")

    @rule(user=st.sampled_from(FILERS), rid=requests)
    def withdraw(self, user: str, rid: int) -> None:
        self.decide(user, rid, "withdraw")

    @precondition(lambda self: any(r.state == "approved" for r in self.model.values()))
    @rule(rid=consumes(requests), sweep=st.booleans())
    def expire(self, rid: int, sweep: bool) -> None:
        """Time passes for one request: its expires_at moves into the past (through the
        domain's own session), and maybe the expiry sweep runs."""
        req = self.model.get(rid)
        if req is None or req.state != "approved":
            return
        with self.wb.sessions.begin() as s:
            row = s.get(AccessRequest, rid)
            assert row is not None
            row.expires_at = utcnow() - timedelta(seconds=1)
        req.expired = True
        if sweep:
            assert rid in self.wb.requests.expire_due()
            req.state = "expired"
            self.requests_ended()

    # -- data ------------------------------------------------------------------------------

    @rule(
        user=st.sampled_from((*RESEARCHERS, *MANAGERS)),
        rid=requests,
        tenant=st.sampled_from(TENANTS),
        own=st.booleans(),
    )
    def grant(self, user: str, rid: int, tenant: str, own: bool) -> None:
        user, tenant = self.owner(rid, user, tenant) if own else (user, tenant)
        r = self.call(
            user, "POST", "grants", json={"request_id": rid, "dataset": f"{tenant}/calls"}
        )
        self.check_grant(r, user, rid, tenant, allowed_under(self.model.get(rid), user, tenant))

    def check_grant(
        self, r: httpx.Response, user: str, rid: int, tenant: str, allowed: bool
    ) -> None:
        if allowed:
            assert r.status_code == 201, f"{user} refused a grant they may have: {r.text}"
        else:
            req = self.model.get(rid)
            assert r.status_code != 201, f"{user} got a grant outside their request: {req}"
            assert "credentials" not in r.json()
            return
        body = r.json()
        assert body["tenant"] == tenant and body["credentials"]["access_key_id"]
        self.issued.append((user, rid, int(body["id"]), tenant))

    # -- jobs ------------------------------------------------------------------------------

    @rule(
        target=jobs,
        user=st.sampled_from((*RESEARCHERS, *MANAGERS, "eve")),
        rid=requests,
        own=st.booleans(),
    )
    def submit_job(self, user: str, rid: int, own: bool) -> int:
        user = self.owner(rid, user, "")[0] if own else user
        body = {"request_id": rid, "name": "campaign", "notebook": NOTEBOOK}
        r = self.call(user, "POST", "jobs", json=body)
        req = self.model.get(rid)
        if not allowed_under(req, user):
            assert r.status_code != 201, f"{user} ran a job outside their request: {req}"
            return -1
        assert r.status_code == 201, f"{user} refused a job they may run: {r.text}"
        assert req is not None
        job = r.json()
        assert job["state"] == "running" and job["tenant"] == req.tenant, job
        jid = int(job["id"])
        self.job_model[jid] = JobModel(jid, user, req, self.backend.tokens[jid])
        return jid

    @rule(job=jobs, rid=requests, tenant=st.sampled_from(TENANTS), own=st.booleans())
    def job_grant(self, job: int, rid: int, tenant: str, own: bool) -> None:
        """The job asks for a grant with its own token, under its request or another."""
        j = self.job_model.get(job)
        if j is None:
            return
        if own:
            rid, tenant = j.request.id, j.request.tenant
        r = self.as_job(j, "POST", "grants", json={"request_id": rid, "dataset": f"{tenant}/calls"})
        allowed = (
            j.running and rid == j.request.id and tenant == j.request.tenant and j.request.grantable
        )
        self.check_grant(r, j.user, rid, tenant, allowed)
        if r.status_code == 201:
            assert r.json().get("job_id") in (None, j.id)

    @rule(user=st.sampled_from((*RESEARCHERS, *MANAGERS)), job=jobs, own=st.booleans())
    def cancel_job(self, user: str, job: int, own: bool) -> None:
        j = self.job_model.get(job)
        user = j.user if own and j else user
        r = self.call(user, "POST", f"jobs/{job}/cancel")
        if j is not None and j.user == user and j.running:
            # a job of an ended request may have been stopped a moment ago: 409 then
            assert r.status_code == 200 or (r.status_code == 409 and not j.request.grantable)
            j.running = False
        else:
            assert r.status_code != 200, f"{user} cancelled job {job}: {j}"

    @rule(user=st.sampled_from((*RESEARCHERS, *MANAGERS, "eve")), job=jobs)
    def read_job(self, user: str, job: int) -> None:
        r = self.call(user, "GET", f"jobs/{job}")
        j = self.job_model.get(job)
        may = j is not None and (j.user == user or user in GOVERNS[j.request.tenant])
        assert (r.status_code == 200) == may, (user, j, r.text)

    @rule()
    def reap(self) -> None:
        """The service's reaper's round: jobs of ended or expired requests stop."""
        self.wb.jobs.reconcile()
        self.requests_ended()

    # -- artifacts and promotion -----------------------------------------------------------

    @rule(
        target=artifacts,
        user=st.sampled_from((*RESEARCHERS, *MANAGERS)),
        rid=requests,
        parent=st.none() | artifacts,
        own=st.booleans(),
    )
    def make_artifact(self, user: str, rid: int, parent: int | None, own: bool) -> int:
        """Upload (with the credentials the service hands out) and register an artifact,
        maybe built on another (of any tenant: its lineage then spans both)."""
        user = self.owner(rid, user, "")[0] if own else user
        r = self.call(user, "POST", "artifacts/uploads", json={"request_id": rid})
        req = self.model.get(rid)
        if not allowed_under(req, user):
            assert r.status_code != 201, f"{user} got upload keys outside their request: {req}"
            assert "credentials" not in r.json()
            return -1
        assert r.status_code == 201, r.text
        assert req is not None
        up = r.json()
        assert up["tenant"] == req.tenant
        self.uploads.append((user, rid, req.tenant))
        content = f"model {len(self.art_model)} of {req.tenant} by {user}".encode()
        sha = hashlib.sha256(content).hexdigest()
        loc, keys = up["location"], up["credentials"]
        s3 = self.stores.seaweed.store.client(keys["access_key_id"], keys["secret_access_key"])
        s3.put_object(Bucket=loc["bucket"], Key=loc["prefix"] + sha, Body=content)
        body: dict[str, Any] = {
            "name": "model",
            "sha256": sha,
            "size": len(content),
            "request_id": rid,
        }
        p = self.art_model.get(parent) if parent is not None else None
        if parent is not None and parent > 0:
            body["parents"] = [parent]
        r = self.call(user, "POST", "artifacts", json=body)
        if p is not None and not (p.maker == user or user in GOVERNS[p.tenant]):
            assert r.status_code == 404, r.text  # not a parent they may use
            return -1
        if p is not None and p.stage == "quarantined":
            assert r.status_code == 409, r.text
            return -1
        assert r.status_code == 201, r.text
        art = r.json()
        lineage = {req.tenant} | (p.lineage if p else set())
        assert art["tenant"] == req.tenant
        aid = int(art["id"])
        self.art_model[aid] = Art(aid, user, req.tenant, lineage)
        return aid

    @rule(
        user=st.sampled_from((*RESEARCHERS, *MANAGERS)),
        art=artifacts,
        tenant=st.none() | st.sampled_from(TENANTS),
        stage=st.sampled_from(("archived", "production")),
        shared=st.booleans(),
        own=st.booleans(),
    )
    def promote(
        self, user: str, art: int, tenant: str | None, stage: str, shared: bool, own: bool
    ) -> None:
        a = self.art_model.get(art)
        user = a.maker if own and a else user
        body: dict[str, Any] = {"stage": stage, "tenant": tenant}
        if shared:
            body["scope"] = "shared"
        r = self.call(user, "POST", f"artifacts/{art}/promote", json=body)
        if r.status_code != 200:
            return
        assert a is not None, f"promotion of a made-up artifact {art}"
        target = tenant or a.tenant
        assert not shared, f"artifact {art} ({a.lineage}) shared without consent"
        assert a.lineage == {target}, f"artifact {art} of {a.lineage} promoted for {target}"
        assert user == a.maker or user in GOVERNS[a.tenant], f"{user} promoted {a}"
        assert stage == "archived" and a.stage == "candidate", (stage, a)
        assert r.json()["stage"] == stage
        a.stage = stage

    # -- erasure ---------------------------------------------------------------------------

    @precondition(lambda self: not self.erased and (self.issued or self.job_model))
    @rule(tenant=st.sampled_from(TENANTS))
    def erase(self, tenant: str) -> None:
        """The operator erases a tenant (`workbench tenant erase`) in the middle of it all:
        once per example, after something was handed out."""
        store = self.stores.seaweed.store
        operator = Operator(
            s3=admin_client(self.stores.home, store),
            data_bucket=store.data_bucket,
            artifacts_bucket=store.artifacts_bucket,
            bao=self.stores.root(),
        )
        eraser = self.wb.erasure(operator, server_wait=5)
        certificate = eraser.erase(tenant)
        assert certificate["tenant"] == tenant
        self.erased.add(tenant)
        for req in self.model.values():
            if req.tenant == tenant and req.state in ("pending", "approved"):
                req.state = "denied" if req.state == "pending" else "revoked"
        self.requests_ended()
        for a in self.art_model.values():
            if tenant in a.lineage:
                a.stage = "quarantined"

    # -- invariants ------------------------------------------------------------------------

    def audit_events(self) -> list[dict[str, Any]]:
        with self.wb.engine.connect() as conn:
            bodies = conn.execute(text("SELECT body FROM audit_events")).scalars().all()
        return [json.loads(b) for b in bodies]

    @invariant()
    def every_credential_and_job_has_a_committed_audit_event(self) -> None:
        if not (self.issued or self.job_model or self.uploads):
            return
        grants, jobs, uploads = set(), set(), []
        for e in self.audit_events():
            if e.get("outcome", "ok") != "ok":
                continue
            if e["action"] == "grant.issue":
                grants.add((e["actor"], e["request_id"], e["detail"]["grant_id"], e["tenant"]))
            elif e["action"] == "job.submit":
                jobs.add(e["resource"])
            elif e["action"] == "artifact.upload":
                uploads.append((e["actor"], e["request_id"], e["tenant"]))
        missing = [g for g in self.issued if g not in grants]
        assert not missing, f"credentials without an audit event: {missing}"
        missing_jobs = [j for j in self.job_model if f"job:{j}" not in jobs]
        assert not missing_jobs, f"jobs without an audit event: {missing_jobs}"
        for u in set(self.uploads):
            assert uploads.count(u) >= self.uploads.count(u), f"upload keys not on record: {u}"

    @invariant()
    def requests_are_where_the_model_says(self) -> None:
        for rid, req in self.model.items():
            if req.expired and req.state == "approved":
                continue  # expires lazily; the service may already show it expired
            got = self.call(req.requester, "GET", f"requests/{rid}").json()["state"]
            assert got == req.state, (rid, got, req)

    @invariant()
    def jobs_run_only_under_usable_requests(self) -> None:
        if not self.job_model:
            return
        states = {j["id"]: j["state"] for j in self.call("admin", "GET", "jobs").json()["jobs"]}
        for jid, job in self.job_model.items():
            running = states[jid] in ("queued", "running")
            if job.request.grantable:
                assert running == job.running, (jid, states[jid], job)
            else:  # ended or expired: stopped at once, or at the reaper's next round
                assert job.running or not running, (jid, states[jid], job)
                job.running = running
            assert not (running and job.request.tenant in self.erased), (jid, job)

    @invariant()
    def artifacts_are_where_the_model_says(self) -> None:
        if not self.art_model:
            return
        found = {a["id"]: a for a in self.call("admin", "GET", "artifacts").json()["artifacts"]}
        for aid, art in self.art_model.items():
            assert found[aid]["stage"] == art.stage, (aid, found[aid]["stage"], art)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_nobody_holds_access_outside_their_approved_request(stores: Stores) -> None:
    AccessMachine.stores = stores
    AccessMachine.TestCase.settings = settings(
        max_examples=profile(25, 200),
        stateful_step_count=profile(20, 50),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    try:
        AccessMachine.TestCase().runTest()
    finally:
        stores.seaweed.seed()  # erasure deleted tenants' objects from the shared SeaweedFS
