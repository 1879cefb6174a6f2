"""The artifact pages: the list, the report with pass/fail per metric and slice, the lineage
graph, and the reviewer's form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.artifacts.conftest import approved
from tests.artifacts.test_promotion import with_report
from tests.artifacts.test_registry import save
from tests.conftest import Service
from tests.service.test_pages import page
from workbench.artifacts.models import ArtifactReport
from workbench.service.artifact_pages import lineage_svg


def test_the_artifact_page_shows_report_lineage_and_the_review_form(
    service: Service, as_server: Any, tmp_path: Path
) -> None:
    as_server(approved(service))
    base = save(tmp_path, "base", b"b")
    art = save(tmp_path, body=b"a", parents=[base["id"]])
    report_id = with_report(service, art["id"], "passed", "alice")
    rows = [
        {
            "dataset": "calls",
            "slice": "",
            "job_id": 1,
            "metric": "accuracy",
            "value": 0.9,
            "bound": "≥ 0.6",
            "baseline": None,
            "gated": True,
            "passed": True,
            "why": "",
        },
        {
            "dataset": "calls",
            "slice": "sentiment=negative",
            "job_id": 2,
            "metric": "accuracy",
            "value": 0.4,
            "bound": "≥ 0.6",
            "baseline": None,
            "gated": True,
            "passed": False,
            "why": "accuracy on calls [sentiment=negative] is 0.4, below 0.6",
        },
    ]
    import json

    with service.wb.sessions.begin() as s:
        row = s.get(ArtifactReport, report_id)
        assert row is not None
        row.results = json.dumps(rows)
    with page(service, "alice") as alice:
        listing = alice.get("artifacts")
        assert listing.status_code == 200 and f"artifacts/{art['id']}" in listing.text
        r = alice.get(f"artifacts/{art['id']}")
        assert r.status_code == 200
        assert "<svg" in r.text and f'data-id="artifact:{base["id"]}"' in r.text
        assert "sentiment=negative" in r.text and "fail: accuracy on calls" in r.text
        assert 'id="review-form"' not in r.text  # her own artifact
    with page(service, "mike") as mike:
        r = mike.get(f"artifacts/{art['id']}")
        assert 'id="review-form"' in r.text
        r = mike.post(f"artifacts/{art['id']}/review", data={"decision": "approve"})
        assert r.status_code == 302, r.text
        assert "<b>approve</b> by mike" in mike.get(f"artifacts/{art['id']}").text
    with page(service, "bob") as bob:
        assert bob.get(f"artifacts/{art['id']}").status_code == 404


def test_lineage_svg_places_sources_left_of_what_came_from_them() -> None:
    graph = {
        "root": "artifact:2",
        "nodes": [
            {
                "id": "dataset:acme/calls",
                "kind": "dataset",
                "label": "acme/calls",
                "tenant": "acme",
            },
            {
                "id": "artifact:1",
                "kind": "artifact",
                "label": "#1 <b>",
                "tenant": "acme",
                "stage": "candidate",
            },
            {
                "id": "artifact:2",
                "kind": "artifact",
                "label": "#2 m",
                "tenant": "acme",
                "stage": "quarantined",
            },
        ],
        "edges": [
            {"from": "dataset:acme/calls", "to": "artifact:1"},
            {"from": "artifact:1", "to": "artifact:2"},
        ],
    }
    svg = lineage_svg(graph)
    assert svg.count("<line") == 2 and svg.count("<rect") == 3
    assert "&lt;b&gt;" in svg and "<b>" not in svg
    assert svg.index('data-id="dataset:acme/calls"') < svg.index('data-id="artifact:2"')
