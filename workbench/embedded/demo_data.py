"""Demo data of the embedded default: call transcripts and an accounts table for acme and globex.

Synthetic and deterministic (seeded by tenant name), and every record carries its tenant id, so
a leak between tenants shows in the data itself. `seed()` is idempotent: it creates missing
buckets, writes the objects that are missing or differ, and otherwise only lists.

Objects, in the data bucket: `tenants/<t>/calls/calls-<day>.jsonl` (one call per line) and
`tenants/<t>/accounts/accounts.csv`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from workbench.access.objects import S3ObjectStore, dataset_prefix, tenant_prefix
from workbench.config import CatalogData

DEMO_TENANTS = ("acme", "globex")
CALL_DAYS = ("2026-03-02", "2026-03-03", "2026-03-04")
CALLS_PER_DAY = 8
ACCOUNTS = 20

_AGENTS = ("Priya Shah", "Tom Becker", "Lena Okafor", "Marco Rossi", "Ana Lima", "Sven Holm")
_FIRST = ("Jordan", "Casey", "Riley", "Morgan", "Avery", "Quinn", "Taylor", "Jamie", "Drew")
_LAST = ("Nguyen", "Garcia", "Miller", "Kowalski", "Haddad", "Tanaka", "Okoro", "Lindqvist")
_COMPANY = ("Northwind", "Blue Harbor", "Pinecrest", "Redstone", "Silverline", "Cobalt", "Lumen")
_SUFFIX = ("Logistics", "Foods", "Health", "Labs", "Retail", "Energy", "Partners")
_INDUSTRY = ("logistics", "food", "healthcare", "biotech", "retail", "energy", "consulting")
_PLANS = ("starter", "team", "business", "enterprise")
_REGIONS = ("us-east", "us-west", "eu-central", "ap-south")
_TOPICS: dict[str, tuple[str, str, str]] = {
    # topic: (customer's opening, agent's answer, customer's close)
    "billing dispute": (
        "I was charged twice for last month's invoice.",
        "I see the duplicate charge; I have refunded it, you will see it in 3 to 5 days.",
        "Great, thanks for sorting that out quickly.",
    ),
    "password reset": (
        "I'm locked out of the admin console after too many attempts.",
        "I have unlocked the account and sent a reset link to the address on file.",
        "Got the email, I'm back in.",
    ),
    "plan upgrade": (
        "We're adding a second team and need more seats.",
        "I can move you to the business plan today; the price is prorated.",
        "Please go ahead with the upgrade.",
    ),
    "outage report": (
        "Our dashboards stopped loading about twenty minutes ago.",
        "We had a regional incident; it is resolved now, please reload.",
        "Loading again, thank you.",
    ),
    "cancellation": (
        "We'd like to cancel at the end of the term.",
        "I have noted the cancellation; may I ask what we could have done better?",
        "Mostly budget; the product itself was fine.",
    ),
}
_SENTIMENT = {"cancellation": "negative", "outage report": "neutral"}


def _rng(tenant: str, what: str) -> random.Random:
    return random.Random(f"workbench-demo:{tenant}:{what}")


def _person(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def accounts(tenant: str) -> list[dict[str, Any]]:
    """The tenant's demo accounts, one dict per row."""
    rng = _rng(tenant, "accounts")
    rows = []
    for n in range(1, ACCOUNTS + 1):
        rows.append(
            {
                "tenant": tenant,
                "account_id": f"{tenant}-acct-{n:03d}",
                "company": f"{rng.choice(_COMPANY)} {rng.choice(_SUFFIX)}",
                "industry": rng.choice(_INDUSTRY),
                "plan": rng.choice(_PLANS),
                "seats": rng.randint(3, 900),
                "annual_revenue_usd": rng.randint(40, 9000) * 1000,
                "region": rng.choice(_REGIONS),
                "created_at": f"20{rng.randint(19, 25)}-{rng.randint(1, 12):02d}-"
                f"{rng.randint(1, 28):02d}",
                "status": "active" if rng.random() < 0.85 else "churned",
            }
        )
    return rows


def calls(tenant: str, display_name: str, day: str) -> list[dict[str, Any]]:
    """The tenant's demo calls of one day, one dict per call."""
    rng = _rng(tenant, f"calls:{day}")
    day_no = CALL_DAYS.index(day) if day in CALL_DAYS else 0
    records = []
    for n in range(1, CALLS_PER_DAY + 1):
        topic = rng.choice(sorted(_TOPICS))
        opening, answer, close = _TOPICS[topic]
        agent, customer = rng.choice(_AGENTS), _person(rng)
        transcript = "\n".join(
            (
                f"Agent: Thank you for calling {display_name}, this is {agent.split()[0]}.",
                f"Customer: Hi, this is {customer}. {opening}",
                f"Agent: Thanks, {customer.split()[0]}. {answer}",
                f"Customer: {close}",
                "Agent: Is there anything else I can help with today?",
                "Customer: No, that's all. Bye.",
            )
        )
        records.append(
            {
                "tenant": tenant,
                "call_id": f"{tenant}-call-{day_no * CALLS_PER_DAY + n:04d}",
                "started_at": f"{day}T{rng.randint(8, 17):02d}:{rng.randint(0, 59):02d}:00Z",
                "agent": agent,
                "customer": customer,
                "account_id": f"{tenant}-acct-{rng.randint(1, ACCOUNTS):03d}",
                "topic": topic,
                "duration_seconds": rng.randint(95, 1400),
                "sentiment": _SENTIMENT.get(topic, "positive"),
                "transcript": transcript,
            }
        )
    return records


def demo_objects(tenant: str, display_name: str = "") -> dict[str, bytes]:
    """Key (in the data bucket) → body of every demo object of `tenant`."""
    display = display_name or tenant.title()
    objects: dict[str, bytes] = {}
    for day in CALL_DAYS:
        lines = (json.dumps(r, sort_keys=True) + "\n" for r in calls(tenant, display, day))
        objects[f"{dataset_prefix(tenant, 'calls')}calls-{day}.jsonl"] = "".join(lines).encode()
    rows = accounts(tenant)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    objects[f"{dataset_prefix(tenant, 'accounts')}accounts.csv"] = out.getvalue().encode()
    return objects


@dataclass
class SeedResult:
    """What one `seed()` changed: nothing, when everything was already there."""

    buckets_created: list[str] = field(default_factory=list)
    objects_written: list[str] = field(default_factory=list)


def ensure_buckets(client: Any, buckets: Iterable[str], region: str) -> list[str]:
    """Create the buckets that do not exist; return their names."""
    from botocore.exceptions import ClientError

    created = []
    for bucket in buckets:
        try:
            client.head_bucket(Bucket=bucket)
            continue
        except ClientError as e:
            if str(e.response.get("Error", {}).get("Code")) not in ("404", "NoSuchBucket"):
                raise
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            client.create_bucket(**kwargs)
            created.append(bucket)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise
    return created


def _etags(client: Any, bucket: str, prefix: str) -> dict[str, str]:
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = obj.get("ETag", "").strip('"')
    return found


def seed(
    client: Any,
    store: S3ObjectStore,
    catalog: CatalogData,
    tenants: Iterable[str] = DEMO_TENANTS,
) -> SeedResult:
    """Create the buckets and write the demo objects of `tenants` that are in the catalog, with
    an admin `client`; objects already there with the same content are left alone."""
    result = SeedResult()
    result.buckets_created = ensure_buckets(
        client, (store.data_bucket, store.artifacts_bucket), store.region
    )
    for tenant in tenants:
        t = catalog.tenants.get(tenant)
        if t is None:
            continue
        there = _etags(client, store.data_bucket, tenant_prefix(tenant))
        for key, body in demo_objects(tenant, t.display_name).items():
            if there.get(key) != hashlib.md5(body, usedforsecurity=False).hexdigest():
                content_type = "text/csv" if key.endswith(".csv") else "application/x-ndjson"
                client.put_object(
                    Bucket=store.data_bucket, Key=key, Body=body, ContentType=content_type
                )
                result.objects_written.append(key)
    return result
