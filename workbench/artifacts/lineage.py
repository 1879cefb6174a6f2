"""Lineage queries: what an artifact came from (its ancestors' tenants and datasets) and what
came from a tenant (every artifact with it anywhere in its lineage), as recursive CTEs that run
on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.artifacts.models import Artifact, ArtifactParent, ArtifactSource


@dataclass
class Lineage:
    """An artifact's lineage: every tenant and dataset reached through its parents, and its
    direct parents."""

    tenants: set[str] = field(default_factory=set)
    datasets: set[str] = field(default_factory=set)  # tenant/dataset
    parents: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenants": sorted(self.tenants),
            "datasets": sorted(self.datasets),
            "parents": sorted(self.parents),
        }

    def describe(self) -> str:
        data = f" (datasets {', '.join(sorted(self.datasets))})" if self.datasets else ""
        return f"tenants {', '.join(sorted(self.tenants))}{data}"


def derived_from(s: Session, tenant: str) -> list[int]:
    """Ids of every artifact with `tenant` anywhere in its lineage: made from its data, or
    built on an artifact that was, at any depth."""
    derived = (
        select(ArtifactSource.artifact_id.label("id"))
        .where(ArtifactSource.tenant == tenant)
        .cte("derived", recursive=True)
    )
    derived = derived.union(
        select(ArtifactParent.artifact_id).join(derived, ArtifactParent.parent_id == derived.c.id)
    )
    return sorted(s.scalars(select(derived.c.id)))


def _ancestry(ids: Iterable[int]) -> Any:
    """CTE (root, id): each of `ids` and all its ancestors."""
    base = select(Artifact.id.label("root"), Artifact.id.label("id")).where(
        Artifact.id.in_(list(ids))
    )
    anc = base.cte("ancestry", recursive=True)
    return anc.union(
        select(anc.c.root, ArtifactParent.parent_id).join(
            anc, ArtifactParent.artifact_id == anc.c.id
        )
    )


def lineages(s: Session, ids: list[int]) -> dict[int, Lineage]:
    """The lineage of each of `ids`, in two queries."""
    out = {i: Lineage() for i in ids}
    if not ids:
        return out
    anc = _ancestry(ids)
    rows = s.execute(
        select(anc.c.root, ArtifactSource.tenant, ArtifactSource.dataset).join(
            ArtifactSource, ArtifactSource.artifact_id == anc.c.id
        )
    )
    for root, tenant, dataset in rows:
        out[root].tenants.add(tenant)
        if dataset:
            out[root].datasets.add(f"{tenant}/{dataset}")
    parents = s.execute(
        select(ArtifactParent.artifact_id, ArtifactParent.parent_id).where(
            ArtifactParent.artifact_id.in_(ids)
        )
    )
    for child, parent in parents:
        out[child].parents.append(parent)
    return out


def graph(s: Session, artifact_id: int) -> dict[str, Any]:
    """The artifact's ancestry as nodes and edges: artifacts (`artifact:<id>`), datasets
    (`dataset:<tenant>/<name>`) and tenants read without a named dataset (`tenant:<name>`);
    an edge points from what was used to what was made from it."""
    anc = _ancestry([artifact_id])
    ids = set(s.scalars(select(anc.c.id)))
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, str]] = []
    for a in s.scalars(select(Artifact).where(Artifact.id.in_(ids)).order_by(Artifact.id)):
        nodes[f"artifact:{a.id}"] = {
            "id": f"artifact:{a.id}",
            "kind": "artifact",
            "label": f"#{a.id} {a.name}",
            "tenant": a.tenant,
            "stage": a.stage,
        }
    by_parent: dict[int, list[int]] = defaultdict(list)
    for child, parent in s.execute(
        select(ArtifactParent.artifact_id, ArtifactParent.parent_id).where(
            ArtifactParent.artifact_id.in_(ids)
        )
    ):
        by_parent[parent].append(child)
        edges.append({"from": f"artifact:{parent}", "to": f"artifact:{child}"})
    for aid, tenant, dataset in s.execute(
        select(ArtifactSource.artifact_id, ArtifactSource.tenant, ArtifactSource.dataset).where(
            ArtifactSource.artifact_id.in_(ids)
        )
    ):
        key = f"dataset:{tenant}/{dataset}" if dataset else f"tenant:{tenant}"
        nodes.setdefault(
            key,
            {
                "id": key,
                "kind": "dataset" if dataset else "tenant",
                "label": f"{tenant}/{dataset}" if dataset else tenant,
                "tenant": tenant,
            },
        )
        edges.append({"from": key, "to": f"artifact:{aid}"})
    return {"root": f"artifact:{artifact_id}", "nodes": list(nodes.values()), "edges": edges}
