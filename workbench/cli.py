"""The `workbench` command: `up`, `db upgrade`, `audit verify`, `audit query`, `run`,
`tenant erase`."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from workbench.config import default_home

QUERY_COLUMNS = (
    "seq",
    "at",
    "actor",
    "role",
    "action",
    "outcome",
    "tenant",
    "dataset",
    "request_id",
    "purpose",
    "reason",
    "client",
)


def _home(args: argparse.Namespace) -> Path:
    return (args.home or default_home()).resolve()


def cmd_up(args: argparse.Namespace) -> int:
    from workbench.embedded.up import up

    return up(_home(args), args.port)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from workbench import dbsetup
    from workbench.config import settings_for
    from workbench.db import make_engine

    url = args.url or settings_for(_home(args)).db_url
    engine = make_engine(url)
    dbsetup.upgrade(engine)
    print(f"database at {engine.url.render_as_string()} is at the newest schema")
    if args.app_role:
        dbsetup.grant_app_role(engine, args.app_role)
        print(f"role {args.app_role} may use the service tables; audit tables: INSERT, SELECT only")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from workbench.audit import verify
    from workbench.audit.chain import load_public_key
    from workbench.config import settings_for
    from workbench.db import make_engine

    settings = settings_for(_home(args))
    key_path = Path(args.key) if args.key else settings.signing_key_path.with_suffix(".pub")
    if not key_path.exists():
        key_path = settings.signing_key_path
    public_key = load_public_key(key_path) if key_path.exists() else None
    if public_key is None:
        print(
            "warning: no signing key found; checking links only, not checkpoints", file=sys.stderr
        )
    engine = make_engine(args.url or settings.db_url)
    with engine.connect() as conn:
        verdict = verify(conn, public_key)
    print(verdict)
    return 0 if verdict.ok else 1


def _client(args: argparse.Namespace) -> httpx.Client:
    url = args.url or os.environ.get("WORKBENCH_URL")
    token = args.token or os.environ.get("WORKBENCH_TOKEN")
    if not url or not token:
        raise SystemExit(
            "error: give the hub URL and a JupyterHub token with --url/--token "
            "or $WORKBENCH_URL/$WORKBENCH_TOKEN"
        )
    base = url.rstrip("/") + "/services/workbench/api/v1/"
    return httpx.Client(base_url=base, headers={"Authorization": f"token {token}"}, timeout=60)


def _answer(resp: httpx.Response) -> Any:
    try:
        data = resp.json()
    except ValueError:
        data = {"error": resp.text[:500]}
    if resp.status_code >= 400:
        raise SystemExit(f"error {resp.status_code}: {data.get('error', data)}")
    return data


def cmd_audit_query(args: argparse.Namespace) -> int:
    params = {
        k: v
        for k, v in {
            "tenant": args.tenant,
            "user": args.user,
            "action": args.action,
            "outcome": args.outcome,
            "since": args.since,
            "until": args.until,
            "limit": args.limit,
        }.items()
        if v is not None
    }
    with _client(args) as client:
        events = _answer(client.get("audit/events", params=params))["events"]
    print(format_events(events, args.format), end="")
    return 0


def format_events(events: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(events, indent=2, ensure_ascii=False) + "\n"
    rows = [[_cell(e.get(c)) for c in QUERY_COLUMNS] for e in events]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(QUERY_COLUMNS)
        writer.writerows(rows)
        return out.getvalue()
    from rich.console import Console
    from rich.table import Table

    table = Table(*QUERY_COLUMNS, title=f"{len(events)} audit events, newest first")
    for row in rows:
        table.add_row(*row)
    buf = io.StringIO()
    Console(file=buf, width=200).print(table)
    return buf.getvalue()


def parameter_value(text: str) -> Any:
    """`-p NAME VALUE`: JSON when it parses (numbers, true/false, null, lists), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def cmd_run(args: argparse.Namespace) -> int:
    from workbench.jobs.runs import Run, follow, requests_per_tenant

    path = Path(args.notebook)
    try:
        notebook = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: cannot read the notebook {path}: {e}") from e
    params = {name: parameter_value(value) for name, value in args.parameters or []}
    with _client(args) as client:
        if args.each_tenant:
            found = requests_per_tenant(_answer(client.get("requests", params={"view": "mine"})))
            if not found:
                raise SystemExit("error: you hold no approved, unexpired request for any tenant")
        else:
            found = {"": args.request}
        runs = []
        for _tenant, request_id in sorted(found.items()):
            body = {
                "request_id": request_id,
                "name": args.name or path.stem,
                "notebook": notebook,
                "notebook_name": path.name,
                "parameters": params,
                **({"profile": args.profile} if args.profile else {}),
            }
            job = _answer(client.post("jobs", json=body))
            print(f"job {job['id']}: {path.name} for {job['tenant']} under request {request_id}")
            runs.append(Run(job))
        if args.no_wait:
            return 0
        return follow(client, runs, Path(args.output) if args.output else None)


def cmd_tenant_erase(args: argparse.Namespace) -> int:
    import getpass

    from workbench.config import settings_for
    from workbench.erasure.operator import operator_for, stack_env
    from workbench.erasure.service import known_tenant
    from workbench.errors import WorkbenchError
    from workbench.service.context import Workbench

    home = _home(args)
    for key, value in stack_env(home).items():  # reach the stack `workbench up` runs there
        os.environ.setdefault(key, value)
    wb = Workbench.open(settings_for(home))
    try:
        try:
            known_tenant(wb.sessions, wb.settings.catalog, args.tenant_name)
        except WorkbenchError as e:
            print(f"error: {e.message}", file=sys.stderr)
            return 2
        erasure = wb.erasure(
            operator_for(wb.settings),
            server_wait=args.server_wait,
            actor=f"cli:{getpass.getuser()}",
        )
        try:
            if not args.yes:
                plan = erasure.plan(args.tenant_name)
                print(json.dumps(plan, indent=2))
                print(f"this would erase tenant {args.tenant_name}; run again with --yes to do it")
                return 2
            cert = erasure.erase(args.tenant_name)
        except WorkbenchError as e:
            print(f"error: {e.message}", file=sys.stderr)
            return 2 if e.status < 500 else 1
    finally:
        wb.close()
    print(json.dumps({k: v for k, v in cert.items() if k != "objects"}, indent=2, default=str))
    objects = cert["objects"]
    if cert["found_left"] == 0 and cert["runs"] > 1:
        print(f"tenant {args.tenant_name}: nothing left to erase")
    print(
        f"tenant {args.tenant_name} erased: {objects['count']} objects ({objects['bytes']} bytes, "
        f"manifest sha256 {objects['manifest_sha256']}); certificate sha256 "
        f"{cert['certificate_sha256']} is in the audit log (action tenant.erase)"
    )
    return 0


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description=__doc__)
    home = argparse.ArgumentParser(add_help=False)
    home.add_argument(
        "--home",
        type=Path,
        help="state and configuration (default $WORKBENCH_HOME or ~/.workbench)",
    )
    person = argparse.ArgumentParser(add_help=False)
    person.add_argument("--url", help="hub base URL (default $WORKBENCH_URL)")
    person.add_argument("--token", help="JupyterHub API token (default $WORKBENCH_TOKEN)")
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", parents=[home], help="run the embedded stack in the foreground")
    up.add_argument("--port", type=int, default=8000)
    up.set_defaults(fn=cmd_up)

    db = sub.add_parser("db", help="the service database").add_subparsers(dest="db", required=True)
    upg = db.add_parser("upgrade", parents=[home], help="migrate to the newest schema")
    upg.add_argument("--url", help="database URL (default: the service's)")
    upg.add_argument(
        "--app-role", help="PostgreSQL role of the service to grant (INSERT/SELECT on audit)"
    )
    upg.set_defaults(fn=cmd_db_upgrade)

    audit = sub.add_parser("audit", help="the audit log").add_subparsers(
        dest="audit", required=True
    )
    ver = audit.add_parser("verify", parents=[home], help="check the hash chain and signatures")
    ver.add_argument("--url", help="database URL (default: the service's)")
    ver.add_argument("--key", help="public key (PEM) that signed the checkpoints")
    ver.set_defaults(fn=cmd_audit_verify)
    qry = audit.add_parser("query", parents=[home, person], help="search the audit log")
    qry.add_argument("--tenant")
    qry.add_argument("--user")
    qry.add_argument("--action")
    qry.add_argument("--outcome", choices=("ok", "refused", "error"))
    qry.add_argument("--since", help="ISO time or age: 2026-11-01, 24h, 7d")
    qry.add_argument("--until")
    qry.add_argument("--limit", type=int)
    qry.add_argument("--format", choices=("table", "json", "csv"), default="table")
    qry.set_defaults(fn=cmd_audit_query)

    tenant = sub.add_parser("tenant", help="tenants").add_subparsers(dest="tenant", required=True)
    erase = tenant.add_parser(
        "erase",
        parents=[home],
        help="revoke, stop and delete everything of a tenant; quarantine what derives from it",
    )
    erase.add_argument("tenant_name", metavar="TENANT")
    erase.add_argument("--yes", action="store_true", help="do it (without: show what it reaches)")
    erase.add_argument(
        "--server-wait",
        type=float,
        default=90.0,
        help="seconds to wait for the tenant's notebook servers to be stopped (default 90)",
    )
    erase.set_defaults(fn=cmd_tenant_erase)

    from workbench.k8s.cli import register as register_k8s

    register_k8s(sub, [home])

    run = sub.add_parser(
        "run", parents=[home, person], help="run a notebook as a job under an approved request"
    )
    run.add_argument("notebook", help="the .ipynb file")
    which = run.add_mutually_exclusive_group(required=True)
    which.add_argument("--request", type=int, help="the approved request to run under")
    which.add_argument(
        "--each-tenant",
        action="store_true",
        help="one job per tenant you hold an approved request for, each under its own",
    )
    run.add_argument(
        "-p",
        "--parameter",
        dest="parameters",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="a papermill parameter (VALUE as JSON when it parses, else text)",
    )
    run.add_argument("--name", help="the job's name (default: the notebook's)")
    run.add_argument("--profile", help="a compute profile within the request's")
    run.add_argument("--output", help="directory for the executed notebooks")
    run.add_argument("--no-wait", action="store_true", help="submit and return")
    run.set_defaults(fn=cmd_run)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    sys.exit(args.fn(args))
