"""`health`, `me`, `catalog` and the OpenAPI document."""

from __future__ import annotations

from workbench.actor import Actor
from workbench.service.base import BaseHandler, endpoint


class HealthHandler(BaseHandler):
    """Unauthenticated liveness: the database answers."""

    async def prepare(self) -> None:  # no login needed
        self._actor = None

    async def get(self) -> None:
        await self.run(self._ping)
        self.send_json({"status": "ok"})

    def _ping(self) -> None:
        with self.wb.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")


class OpenAPIHandler(BaseHandler):
    async def prepare(self) -> None:
        self._actor = None

    async def get(self) -> None:
        self.send_json(self.settings["openapi"])


class MeHandler(BaseHandler):
    @endpoint("me.read", "Who I am: name, role, scopes, tenants I govern", scope=None)
    async def get(self, actor: Actor) -> None:
        self.send_json(
            {
                "name": actor.name,
                "role": actor.role,
                "scopes": sorted(s for s in actor.scopes if s.startswith("custom:workbench")),
                "governs": self.wb.settings.catalog.governed_by(actor.name),
            }
        )


class CatalogHandler(BaseHandler):
    @endpoint("catalog.read", "Tenants, their datasets, and the compute profiles", scope=None)
    async def get(self, actor: Actor) -> None:
        cat = self.wb.settings.catalog
        self.send_json(
            {
                "tenants": [
                    {
                        "name": t.name,
                        "display_name": t.display_name,
                        "approvals_required": t.approvals_required,
                        "datasets": [
                            {"name": d.name, "kind": d.kind, "description": d.description}
                            for d in t.datasets.values()
                        ],
                    }
                    for t in cat.tenants.values()
                ],
                "profiles": [p.as_dict() for p in cat.profiles.values()],
            }
        )


ROUTES = [
    ("me", MeHandler),
    ("catalog", CatalogHandler),
]
