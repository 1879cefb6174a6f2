"""Saving, listing and reading artifacts against the real SeaweedFS and OpenBao: the checksum
the service verifies itself, lineage derived from the caller (never from what it sends), names
that are refused, tampered objects, lineage through parents and quarantine."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

import workbench.artifacts
import workbench.data
from tests.access.test_broker import DataStack
from tests.artifacts.conftest import approved, events
from tests.conftest import Service
from workbench.artifacts.store import object_key


def save(
    tmp_path: Path, name: str = "topic-classifier", body: bytes = b"weights", **kw: Any
) -> dict:
    path = tmp_path / f"{name}-{hashlib.sha256(body).hexdigest()[:8]}.bin"
    path.write_bytes(body)
    return workbench.artifacts.save(path, name, model_type="topic-classifier", **kw)


def test_save_verifies_the_object_and_derives_lineage(
    service: Service, stores: DataStack, as_server: Any, tmp_path: Path
) -> None:
    rid = approved(service)
    as_server(rid)
    list(workbench.data.Client(rid).open("calls").records())  # a grant of acme/calls
    art = save(tmp_path, body=b"model bytes")
    digest = hashlib.sha256(b"model bytes").hexdigest()
    assert art["stage"] == "candidate" and art["tenant"] == "acme" and art["request_id"] == rid
    assert art["sha256"] == digest and art["size"] == len(b"model bytes")
    assert art["lineage"] == {"tenants": ["acme"], "datasets": ["acme/calls"], "parents": []}
    assert art["location"] == f"s3://workbench-artifacts/tenants/acme/artifacts/sha256/{digest}"
    obj = stores.seaweed.client("acme").get_object(
        Bucket="workbench-artifacts", Key=object_key("acme", digest)
    )
    assert obj["Body"].read() == b"model bytes"
    upload = events(service, action="artifact.upload")[0]
    register = events(service, action="artifact.register")[0]
    assert upload["seq"] < register["seq"] and upload["request_id"] == rid
    assert register["detail"]["lineage"]["datasets"] == ["acme/calls"]
    listed = workbench.artifacts.list(request_id=rid)
    assert [a["id"] for a in listed] == [art["id"]]
    assert listed[0]["lineage"]["tenants"] == ["acme"]
    with service.client("bob") as c:  # another researcher sees none of it
        assert c.get("artifacts").json()["artifacts"] == []
        assert c.get(f"artifacts/{art['id']}").status_code == 404
    with service.client("maria") as c:  # acme's manager does
        assert [a["id"] for a in c.get("artifacts?tenant=acme").json()["artifacts"]] == [art["id"]]
    loaded = workbench.artifacts.load(art["id"], tmp_path / "back")
    assert loaded.read_bytes() == b"model bytes"


def test_a_torch_model_is_saved_with_torch_save(
    service: Service, as_server: Any, tmp_path: Path
) -> None:
    import torch

    as_server(approved(service))
    model = torch.nn.Linear(4, 2)
    art = workbench.artifacts.save(model, "linear")
    assert art["model_type"] == "torch" and art["size"] > 0
    back = torch.load(workbench.artifacts.load(art["id"]), weights_only=False)
    assert torch.equal(back.weight, model.weight)


@pytest.mark.parametrize(
    "name", ["../evil", "a/b", ".hidden", "..", "x" * 129, "new\nline", "sp ace", "ta\tb"]
)
def test_odd_names_are_refused(service: Service, name: str) -> None:
    rid = approved(service)
    body = {"request_id": rid, "name": name, "sha256": "0" * 64, "size": 1}
    with service.client("alice") as c:
        r = c.post("artifacts", json=body)
    assert r.status_code == 400, r.text
    assert "not valid" in r.json()["error"] or "name" in r.json()["error"]


def test_client_sent_lineage_is_refused_and_parents_must_be_visible(
    service: Service, as_server: Any, tmp_path: Path
) -> None:
    rid = approved(service)
    digest = hashlib.sha256(b"x").hexdigest()
    with service.client("alice") as c:
        body = {"request_id": rid, "name": "m", "sha256": digest, "size": 1}
        r = c.post("artifacts", json={**body, "lineage": {"tenants": []}})
        assert r.status_code == 400 and "lineage" in r.json()["error"]
        r = c.post("artifacts", json={**body, "tenant": "globex"})
        assert r.status_code == 400
        r = c.post("artifacts", json=body)  # nothing uploaded there
        assert r.status_code == 404 and "upload it" in r.json()["error"]
    bob_rid = approved(service, user="bob")
    as_server(bob_rid, "bob")
    bobs = save(tmp_path, "bobs", b"bob's")
    as_server(rid)
    with pytest.raises(workbench.artifacts.ArtifactError, match="not one you may use"):
        save(tmp_path, parents=[bobs["id"]])


def test_a_declared_checksum_that_does_not_match_is_refused(
    service: Service, stores: DataStack
) -> None:
    rid = approved(service)
    digest = hashlib.sha256(b"what I say").hexdigest()
    s3 = stores.seaweed.client("acme")
    s3.put_object(Bucket="workbench-artifacts", Key=object_key("acme", digest), Body=b"other")
    with service.client("alice") as c:
        body = {"request_id": rid, "name": "m", "sha256": digest, "size": 10}
        r = c.post("artifacts", json=body)
    assert r.status_code == 400 and "hashes to" in r.json()["error"]
    assert not service.wb.artifacts.search(service_actor("alice"))


def test_a_tampered_object_is_neither_promoted_nor_handed_out(
    service: Service, stores: DataStack, as_server: Any, tmp_path: Path
) -> None:
    as_server(approved(service))
    art = save(tmp_path, body=b"honest weights")
    key = object_key("acme", art["sha256"])
    stores.seaweed.client("acme").put_object(
        Bucket="workbench-artifacts", Key=key, Body=b"backdoored weights"
    )
    with service.client("alice") as c:
        r = c.post(f"artifacts/{art['id']}/promote", json={"stage": "staging"})
        assert r.status_code == 409 and "tampered" in r.json()["error"]
        assert c.get(f"artifacts/{art['id']}").json()["stage"] == "candidate"
    with pytest.raises(workbench.artifacts.ArtifactError, match="tampered"):
        workbench.artifacts.load(art["id"], tmp_path / "x")
    refused = events(service, action="artifact.promote", outcome="refused")
    assert refused and "tampered" in refused[0]["reason"]


def test_lineage_follows_parents_and_quarantine_reaches_every_descendant(
    service: Service, as_server: Any, tmp_path: Path
) -> None:
    acme_rid = approved(service)
    globex_rid = approved(service, tenant="globex")
    as_server(acme_rid)
    base = save(tmp_path, "base", b"base")
    as_server(globex_rid)
    tuned = save(tmp_path, "tuned", b"tuned", parents=[base["id"]])
    assert tuned["tenant"] == "globex"
    assert tuned["lineage"]["tenants"] == ["acme", "globex"]
    assert tuned["lineage"]["parents"] == [base["id"]]
    distilled = save(tmp_path, "distilled", b"distilled", parents=[tuned])
    assert distilled["lineage"]["tenants"] == ["acme", "globex"]
    other = save(tmp_path, "other", b"other")  # globex only
    with service.client("alice") as c:
        graph = c.get(f"artifacts/{distilled['id']}/lineage").json()
    ids = {n["id"] for n in graph["nodes"]}
    assert {f"artifact:{a['id']}" for a in (base, tuned, distilled)} <= ids
    assert {"from": f"artifact:{tuned['id']}", "to": f"artifact:{distilled['id']}"} in graph[
        "edges"
    ]
    assert "tenant:acme" in ids and f"artifact:{other['id']}" not in ids

    quarantined = service.wb.artifacts.quarantine_tenant("acme", "tenant acme erased")
    assert quarantined == [base["id"], tuned["id"], distilled["id"]]
    assert service.wb.artifacts.quarantine_tenant("acme", "again") == quarantined  # idempotent
    marks = events(service, action="artifact.quarantine")
    assert sorted(e["resource"] for e in marks) == sorted(
        f"artifact:{a['id']}" for a in (base, tuned, distilled)
    )
    assert all(e["reason"] == "tenant acme erased" for e in marks)
    with service.client("alice") as c:
        stages = {a["id"]: a["stage"] for a in c.get("artifacts").json()["artifacts"]}
        r = c.post(f"artifacts/{tuned['id']}/promote", json={"stage": "archived"})
    assert stages[other["id"]] == "candidate"
    assert {stages[a["id"]] for a in (base, tuned, distilled)} == {"quarantined"}
    assert r.status_code == 409 and "quarantined" in r.json()["error"]
    with pytest.raises(workbench.artifacts.ArtifactError, match="quarantined"):
        save(tmp_path, "on-quarantined", b"q", parents=[distilled["id"]])


def test_delete_tenant_objects_names_each_object_and_its_checksum(
    service: Service, stores: DataStack, as_server: Any, tmp_path: Path
) -> None:
    as_server(approved(service, tenant="globex"))
    a = save(tmp_path, "one", b"one")
    b = save(tmp_path, "two", b"two")
    lines = service.wb.artifacts.delete_tenant_objects("globex")
    assert any(f"sha256={a['sha256']}" in line for line in lines)
    assert any(f"sha256={b['sha256']}" in line for line in lines)
    left = stores.seaweed.admin().list_objects_v2(
        Bucket="workbench-artifacts", Prefix="tenants/globex/"
    )
    assert left.get("KeyCount", 0) == 0
    assert service.wb.artifacts.delete_tenant_objects("globex") == []  # idempotent


def service_actor(name: str) -> Any:
    from tests.mocking import model_for
    from workbench.actor import Actor

    return Actor(name=name, scopes=frozenset(model_for(name)["scopes"]))
