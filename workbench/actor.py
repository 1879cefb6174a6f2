"""Who is calling: a JupyterHub user with the scopes of the token they presented."""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.scopes import role_of


@dataclass(frozen=True)
class Actor:
    name: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    client: str | None = None
    kind: str = "user"  # or "service", or "job" (a job's own token)
    job_id: int | None = None  # set for a job: it may act only under its own request
    request_id: int | None = None

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def role(self) -> str:
        return role_of(set(self.scopes))
