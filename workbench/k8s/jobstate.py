"""What a Kubernetes Job's status means for the workbench: `Status` (running, succeeded,
failed, lost), from a Job object or from the events of a watch on Jobs.

Pure functions, tested against recorded watch events (tests/k8s/fixtures). Rules:
- a `Complete` or `SuccessCriteriaMet` condition that is True: succeeded;
- a `Failed` or `FailureTarget` condition that is True: failed, with the reason
  (`DeadlineExceeded`: the request's time ran out; `BackoffLimitExceeded`: the runner failed);
- otherwise (pods pending or running, or the Job suspended): running;
- a Job deleted before it ended, or unknown to the API: lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench.jobs.backend import Status

__all__ = ["JobWatch", "WatchExpired", "job_status"]

SUCCEEDED = ("Complete", "SuccessCriteriaMet")
FAILED = ("Failed", "FailureTarget")
ENDED = frozenset({"succeeded", "failed", "lost"})


def _true_condition(status: Mapping[str, Any], types: Iterable[str]) -> Mapping[str, Any] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") in types and cond.get("status") == "True":
            return dict(cond)
    return None


def job_status(job: Mapping[str, Any]) -> Status:
    """The Status of a Job object (as the API returns it, camelCase)."""
    status = job.get("status") or {}
    done = _true_condition(status, SUCCEEDED)
    if done is not None:
        return Status("succeeded", f"{status.get('succeeded', 0)} pod(s) succeeded")
    failed = _true_condition(status, FAILED)
    if failed is not None:
        reason = failed.get("reason") or "Failed"
        text = failed.get("message") or ""
        if reason == "DeadlineExceeded":
            return Status("failed", f"the request's time ran out (DeadlineExceeded): {text}")
        return Status("failed", f"{reason}: {text}".rstrip(": "))
    if (job.get("spec") or {}).get("suspend"):
        return Status("running", "suspended")
    active = int(status.get("active") or 0)
    ready = int(status.get("ready") or 0)
    if not active:
        return Status("running", "waiting for a pod to be scheduled")
    return Status("running", f"{active} pod(s) active, {ready} ready")


class WatchExpired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again, then watch from there."""


@dataclass
class JobWatch:
    """Folds the events of a watch on Jobs into each Job's Status. `apply` returns
    `(name, Status)` when a Job's state changed, None otherwise; a BOOKMARK only moves
    `resource_version`; an ERROR with code 410 raises WatchExpired."""

    states: dict[str, Status] = field(default_factory=dict)
    resource_version: str = ""

    def apply(self, event: Mapping[str, Any]) -> tuple[str, Status] | None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise WatchExpired(obj.get("message") or "resourceVersion too old")
            raise RuntimeError(f"watch error: {obj.get('message') or obj}")
        meta = obj.get("metadata") or {}
        self.resource_version = meta.get("resourceVersion") or self.resource_version
        if kind == "BOOKMARK":
            return None
        name = str(meta.get("name", ""))
        before = self.states.get(name)
        if kind == "DELETED":
            now = job_status(obj)
            if now.state not in ENDED:
                now = Status("lost", "the Job was deleted before it ended")
        elif kind in ("ADDED", "MODIFIED"):
            now = job_status(obj)
            if before is not None and before.state in ENDED and now.state not in ENDED:
                return None  # an ended job does not come back to life
        else:
            raise ValueError(f"unknown watch event type {kind!r}")
        self.states[name] = now
        return None if now == before else (name, now)

    def replay(self, events: Iterable[Mapping[str, Any]]) -> list[tuple[str, Status]]:
        """`apply` each event in order; the changes it reported."""
        changes = []
        for event in events:
            change = self.apply(event)
            if change is not None:
                changes.append(change)
        return changes
