"""The few Kubernetes API calls the workbench makes, behind one small interface (`KubeAPI`),
so that the job backend is tested with a fake and nothing needs a cluster at import.

`AsyncioKubeAPI` is the real one: kubernetes_asyncio (the client KubeSpawner uses) driven from
synchronous code through a private event loop in a daemon thread, so it can be called from any
thread, including one that runs an event loop of its own. Objects go in and come out as plain
dicts with the API's camelCase names.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, Protocol, TypeVar

__all__ = ["AsyncioKubeAPI", "KubeAPI", "KubeError"]

T = TypeVar("T")


class KubeError(Exception):
    """The API refused a call (`status`: its HTTP status; 0: it did not answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class KubeAPI(Protocol):
    """The calls the job backend makes (each names its endpoint)."""

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """POST the object to its collection (Job, Service, Secret, NetworkPolicy)."""
        ...

    def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        """GET /apis/batch/v1/namespaces/{ns}/jobs/{name}; None when it does not exist."""
        ...

    def delete_job(self, namespace: str, name: str) -> None:
        """DELETE the Job, its pods in the background (propagationPolicy=Background)."""
        ...

    def list_jobs(self, namespace: str, selector: str) -> tuple[list[dict[str, Any]], str]:
        """GET /apis/batch/v1/namespaces/{ns}/jobs?labelSelector=; the items and the list's
        resourceVersion."""
        ...

    def watch_jobs(
        self, namespace: str, selector: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[dict[str, Any]]:
        """GET …/jobs?watch=1: events `{type, object}` until `timeout_seconds`."""
        ...

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """GET /api/v1/namespaces/{ns}/pods?labelSelector=."""
        ...

    def pod_log(self, namespace: str, name: str, tail_lines: int) -> str:
        """GET /api/v1/namespaces/{ns}/pods/{name}/log?tailLines=."""
        ...


class AsyncioKubeAPI:
    """KubeAPI over kubernetes_asyncio; config from the pod's service account when in a
    cluster, else from the kubeconfig (`$KUBECONFIG`, `context`)."""

    def __init__(self, context: str = "", timeout: float = 30.0) -> None:
        self.context = context
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="workbench-kube", daemon=True
        )
        self._thread.start()
        self._api: Any = None

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout + 5)

    async def _client(self) -> Any:
        if self._api is None:
            from kubernetes_asyncio import client, config

            try:
                config.load_incluster_config()
            except config.ConfigException:
                await config.load_kube_config(context=self.context or None)
            self._api = client.ApiClient()
        return self._api

    async def _call(self, group: str, method: str, *args: Any, **kwargs: Any) -> Any:
        from kubernetes_asyncio import client
        from kubernetes_asyncio.client.exceptions import ApiException

        api = await self._client()
        target = getattr(client, group)(api)
        try:
            result = await getattr(target, method)(*args, _request_timeout=self.timeout, **kwargs)
        except ApiException as e:
            raise KubeError(int(e.status or 0), str(e.reason or e.body)) from e
        except (TimeoutError, OSError) as e:
            raise KubeError(0, f"{type(e).__name__}: {e}") from e
        return result if isinstance(result, str) else api.sanitize_for_serialization(result)

    _CREATE = {
        "Job": ("BatchV1Api", "create_namespaced_job"),
        "Service": ("CoreV1Api", "create_namespaced_service"),
        "Secret": ("CoreV1Api", "create_namespaced_secret"),
        "NetworkPolicy": ("NetworkingV1Api", "create_namespaced_network_policy"),
    }

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        group, method = self._CREATE[obj["kind"]]
        ns = obj["metadata"]["namespace"]
        return dict(self._run(self._call(group, method, ns, obj)))

    def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return dict(self._run(self._call("BatchV1Api", "read_namespaced_job", name, namespace)))
        except KubeError as e:
            if e.status == 404:
                return None
            raise

    def delete_job(self, namespace: str, name: str) -> None:
        try:
            self._run(
                self._call(
                    "BatchV1Api",
                    "delete_namespaced_job",
                    name,
                    namespace,
                    propagation_policy="Background",
                )
            )
        except KubeError as e:
            if e.status != 404:
                raise

    def list_jobs(self, namespace: str, selector: str) -> tuple[list[dict[str, Any]], str]:
        data = self._run(
            self._call("BatchV1Api", "list_namespaced_job", namespace, label_selector=selector)
        )
        return list(data.get("items") or []), str(data["metadata"].get("resourceVersion", ""))

    def watch_jobs(
        self, namespace: str, selector: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[dict[str, Any]]:
        from kubernetes_asyncio import client, watch

        async def open_stream() -> Any:
            api = await self._client()
            return watch.Watch().stream(
                client.BatchV1Api(api).list_namespaced_job,
                namespace,
                label_selector=selector,
                resource_version=resource_version or None,
                allow_watch_bookmarks=True,
                timeout_seconds=timeout_seconds,
            )

        stream = self._run(open_stream())
        while True:
            try:
                event = asyncio.run_coroutine_threadsafe(stream.__anext__(), self._loop).result(
                    timeout_seconds + self.timeout
                )
            except StopAsyncIteration:
                return
            yield {"type": event["type"], "object": event["raw_object"]}

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        data = self._run(
            self._call("CoreV1Api", "list_namespaced_pod", namespace, label_selector=selector)
        )
        return list(data.get("items") or [])

    def pod_log(self, namespace: str, name: str, tail_lines: int) -> str:
        return str(
            self._run(
                self._call(
                    "CoreV1Api", "read_namespaced_pod_log", name, namespace, tail_lines=tail_lines
                )
            )
        )
