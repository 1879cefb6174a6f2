"""`workbench k8s render`: print the Kubernetes manifests a request would produce.

    workbench k8s render --request 7                  # a request in the service database
    workbench k8s render --profile gpu-1 --tenant acme --nodes 2 --format json
    workbench k8s render --profile cpu-small --only cluster | kubectl apply -f -

A hypothetical request (--profile) has id 0. Secret values (the job's token) are REDACTED.

The cluster settings (namespace, images, GPU pools, hardening, network endpoints) are
`KubeJobBackend`'s, from HOME/workbench_config.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.k8s.pods import Workload
from workbench.k8s.render import (
    ALL_PARTS,
    PARTS,
    RenderInput,
    Unsafe,
    dump,
    profile_from_spec,
    render,
)

if TYPE_CHECKING:
    from workbench.config import Settings

__all__ = ["register"]


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """Add `k8s render` to the `workbench` command's subparsers; `parents` give `--home`."""
    k8s = sub.add_parser("k8s", help="Kubernetes manifests").add_subparsers(
        dest="k8s", required=True
    )
    r = k8s.add_parser(
        "render",
        parents=parents,
        help="print the pod, job and NetworkPolicy manifests of a request",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = r.add_mutually_exclusive_group(required=True)
    which.add_argument("--request", type=int, help="an access request in the service database")
    which.add_argument("--profile", help="a compute profile of the catalog (hypothetical request)")
    r.add_argument("--tenant", default="acme", help="tenant of a hypothetical request")
    r.add_argument("--user", default="alice", help="requester of a hypothetical request")
    r.add_argument("--hours", type=float, default=8.0, help="length of a hypothetical request")
    r.add_argument("--nodes", type=int, default=1, help="nodes of the job (>1: torchrun)")
    r.add_argument("--job-id", type=int, default=1, help="id the job would have")
    r.add_argument(
        "--only",
        choices=ALL_PARTS,
        action="append",
        help="""print only these parts (repeatable; default: pod, job, policy; cluster: the
        namespace, the hub's Role and the NetworkPolicies, once per install)""",
    )
    r.add_argument("--format", choices=("yaml", "json"), default="yaml")
    r.set_defaults(fn=cmd_render)


def cmd_render(args: argparse.Namespace) -> int:
    from workbench.config import default_home, settings_for
    from workbench.errors import ConfigError
    from workbench.jobs.kube import KubeJobBackend

    home: Path = (args.home or default_home()).resolve()
    try:
        settings = settings_for(home)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.nodes < 1:
        print("error: --nodes must be at least 1", file=sys.stderr)
        return 2
    if args.request is not None:
        workload = _stored(settings, args.request)
        if workload is None:
            print(f"error: no access request {args.request} in {settings.db_url}", file=sys.stderr)
            return 1
    else:
        profile = settings.catalog.profiles.get(args.profile)
        if profile is None:
            known = ", ".join(sorted(settings.catalog.profiles))
            print(f"error: no profile {args.profile!r}; known: {known}", file=sys.stderr)
            return 2
        workload = Workload(0, args.user, args.tenant, (), profile, args.hours * 3600)
    backend = KubeJobBackend(config=settings.config)
    job = RenderInput(
        workload, job_id=args.job_id, nodes=args.nodes, parts=tuple(args.only or PARTS)
    )
    try:
        manifests = render(job, backend.cluster_settings())
    except (Unsafe, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(dump(manifests, args.format))
    return 0


def _stored(settings: Settings, request_id: int) -> Workload | None:
    """The request as a Workload, read from the service database (never written)."""
    from datetime import UTC, datetime

    from workbench.db import make_engine, session_factory
    from workbench.requests.models import AccessRequest

    engine = make_engine(settings.db_url)
    try:
        with session_factory(engine)() as s:
            req = s.get(AccessRequest, request_id)
            if req is None:
                return None
            if req.expires_at is not None:
                left = (req.expires_at - datetime.now(UTC)).total_seconds()
            else:  # not approved yet: as if approved now
                left = req.hours * 3600
            return Workload(
                req.id,
                req.requester,
                req.tenant,
                tuple(req.datasets),
                profile_from_spec(req.profile, dict(req.profile_spec)),
                max(1.0, left),
            )
    finally:
        engine.dispose()
