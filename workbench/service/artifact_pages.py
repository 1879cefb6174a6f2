"""Server-rendered artifact pages: the list, and one artifact with its evaluation report
(pass/fail per metric and slice), the reviewers' form, promotion buttons and its lineage drawn
as a small SVG graph."""

from __future__ import annotations

from html import escape
from typing import Any

from workbench.actor import Actor
from workbench.artifacts.promotion import MOVES
from workbench.scopes import ADMIN, APPROVE
from workbench.service.api.artifacts import PromoteIn, ReviewIn
from workbench.service.base import BaseHandler, Param, endpoint

ID = Param("id", "path", "integer")
BOX_W, BOX_H, GAP_X, GAP_Y = 150, 34, 50, 14


class Page(BaseHandler):
    html = True

    def back(self, path: str) -> None:
        self.redirect(self.settings["prefix"] + path)


class ArtifactsPage(Page):
    @endpoint("page.artifacts", "Artifacts", scope=None)
    async def get(self, actor: Actor) -> None:
        found = await self.run(self.wb.artifacts.search, actor)
        self.render("artifacts.html", artifacts=found)


class ArtifactPage(Page):
    @endpoint("page.artifact", "One artifact", scope=None, params=(ID,))
    async def get(self, actor: Actor, artifact_id: str) -> None:
        art = await self.run(self.wb.artifacts.get, actor, int(artifact_id))
        graph = await self.run(self.wb.artifacts.lineage_graph, actor, int(artifact_id))
        report = art["reports"][0] if art["reports"] else None
        governs = self.wb.settings.catalog.governs(actor.name, art["tenant"])
        maker = art["created_by"] == actor.name
        self.render(
            "artifact.html",
            art=art,
            report=report,
            svg=lineage_svg(graph),
            may_review=actor.has(APPROVE)
            and governs
            and not maker
            and art["stage"] == "staging"
            and report is not None
            and report["state"] == "passed"
            and report["requested_by"] != actor.name,
            moves=list(MOVES.get(art["stage"], ())) if maker or governs or actor.has(ADMIN) else [],
        )


class ArtifactPromotePage(Page):
    @endpoint("artifact.promote", "Promote (form)", scope=None, body=PromoteIn, params=(ID,))
    async def post(self, actor: Actor, artifact_id: str, body: PromoteIn) -> None:
        await self.run(
            self.wb.artifacts.promote, actor, int(artifact_id), body.stage, body.tenant, body.scope
        )
        self.back(f"artifacts/{artifact_id}")


class ArtifactReviewPage(Page):
    @endpoint("artifact.review", "Review (form)", scope=APPROVE, body=ReviewIn, params=(ID,))
    async def post(self, actor: Actor, artifact_id: str, body: ReviewIn) -> None:
        await self.run(
            self.wb.artifacts.review, actor, int(artifact_id), body.decision, body.comment
        )
        self.back(f"artifacts/{artifact_id}")


def lineage_svg(graph: dict[str, Any]) -> str:
    """The lineage graph as SVG: sources on the left, each artifact one column right of the
    deepest thing it was made from; edges as lines."""
    inputs: dict[str, list[str]] = {}
    for e in graph["edges"]:
        inputs.setdefault(e["to"], []).append(e["from"])
    level: dict[str, int] = {}

    def depth(node: str, seen: frozenset[str] = frozenset()) -> int:
        if node not in level:
            parents = [p for p in inputs.get(node, []) if p not in seen]
            level[node] = 1 + max((depth(p, seen | {node}) for p in parents), default=-1)
        return level[node]

    columns: dict[int, list[dict[str, Any]]] = {}
    for n in graph["nodes"]:
        columns.setdefault(depth(n["id"]), []).append(n)
    where: dict[str, tuple[int, int]] = {}
    for col, nodes in sorted(columns.items()):
        for row, n in enumerate(nodes):
            where[n["id"]] = (10 + col * (BOX_W + GAP_X), 10 + row * (BOX_H + GAP_Y))
    width = 20 + (max(columns, default=0) + 1) * (BOX_W + GAP_X) - GAP_X
    height = 20 + max((len(c) for c in columns.values()), default=1) * (BOX_H + GAP_Y) - GAP_Y
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="lineage graph">'
    ]
    for e in graph["edges"]:
        (x1, y1), (x2, y2) = where[e["from"]], where[e["to"]]
        parts.append(
            f'<line x1="{x1 + BOX_W}" y1="{y1 + BOX_H // 2}" x2="{x2}" y2="{y2 + BOX_H // 2}" '
            'stroke="#888" stroke-width="1.5"/>'
        )
    for n in graph["nodes"]:
        x, y = where[n["id"]]
        root = n["id"] == graph["root"]
        fill = {"artifact": "#e8f0fe", "dataset": "#fef7e0", "tenant": "#fce8e6"}[n["kind"]]
        if n.get("stage") == "quarantined":
            fill = "#f4c7c3"
        sub = n.get("stage") or n["kind"]
        parts.append(
            f'<g class="node {escape(n["kind"])}" data-id="{escape(n["id"])}">'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="4" fill="{fill}" '
            f'stroke="{"#1a73e8" if root else "#999"}" stroke-width="{2 if root else 1}"/>'
            f'<text x="{x + 6}" y="{y + 14}" font-size="12">{escape(n["label"][:22])}</text>'
            f'<text x="{x + 6}" y="{y + 28}" font-size="10" fill="#555">'
            f"{escape(n['tenant'])} · {escape(sub)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


ROUTES = [
    ("artifacts", ArtifactsPage),
    ("artifacts/{id}", ArtifactPage),
    ("artifacts/{id}/promote", ArtifactPromotePage),
    ("artifacts/{id}/review", ArtifactReviewPage),
]
