"""A fake Kubernetes API for the job backend's tests: keeps objects in dicts, records calls."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from workbench.k8s.client import KubeError


class FakeKubeAPI:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, ...]] = []
        self.pods: list[dict[str, Any]] = []
        self.logs: dict[str, str] = {}
        self.lists: list[tuple[list[dict[str, Any]], str]] = []
        self.watches: list[list[dict[str, Any]]] = []
        self.fail_create: dict[str, KubeError] = {}

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind, name = obj["kind"], obj["metadata"]["name"]
        self.calls.append(("create", kind, name))
        if kind in self.fail_create:
            raise self.fail_create[kind]
        if (kind, name) in self.objects:
            raise KubeError(409, f"{kind} {name} already exists")
        stored = copy.deepcopy(obj)
        stored["metadata"]["uid"] = f"uid-{name}"
        self.objects[kind, name] = stored
        return copy.deepcopy(stored)

    def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(("read_job", namespace, name))
        found = self.objects.get(("Job", name))
        return copy.deepcopy(found) if found else None

    def delete_job(self, namespace: str, name: str) -> None:
        self.calls.append(("delete_job", namespace, name))
        self.objects.pop(("Job", name), None)

    def list_jobs(self, namespace: str, selector: str) -> tuple[list[dict[str, Any]], str]:
        self.calls.append(("list_jobs", namespace, selector))
        return self.lists.pop(0)

    def watch_jobs(
        self, namespace: str, selector: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[dict[str, Any]]:
        self.calls.append(("watch_jobs", namespace, selector, resource_version))
        yield from self.watches.pop(0)

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self.calls.append(("list_pods", namespace, selector))
        return copy.deepcopy(self.pods)

    def pod_log(self, namespace: str, name: str, tail_lines: int) -> str:
        if name not in self.logs:
            raise KubeError(400, "container is waiting to start")
        return self.logs[name]
