"""The pages people use, rendered by the service (token header stands in for the login cookie;
the browser test logs in for real)."""

from __future__ import annotations

import httpx

from tests.conftest import Service
from tests.mocking import token_for


def page(service: Service, user: str | None) -> httpx.Client:
    headers = {"Authorization": f"token {token_for(user)}"} if user else {}
    return httpx.Client(base_url=service.url, headers=headers, timeout=30)


FORM = {
    "tenant": "acme",
    "datasets": ["acme/calls", "acme/accounts"],
    "purpose": "Churn model",
    "profile": "cpu-small",
    "hours": "8",
    "gpu_hours": "",
}


def test_researcher_files_a_request_with_the_form(service: Service) -> None:
    with page(service, "alice") as alice:
        home = alice.get("")
        assert home.status_code == 200 and "File a new request" in home.text
        assert "Approvals" not in home.text  # no manager link for researchers
        r = alice.post("", data=FORM)
        assert r.status_code == 302
        assert r.headers["Location"].startswith("/services/workbench/requests/")
        detail = alice.get("requests/" + r.headers["Location"].rsplit("/", 1)[1])
        assert "Churn model" in detail.text and "pending" in detail.text
        assert "calls, accounts" in detail.text
        assert "Approve" not in detail.text  # nobody decides their own


def test_form_errors_are_shown_as_a_page(service: Service) -> None:
    with page(service, "alice") as alice:
        r = alice.post("", data={**FORM, "datasets": ["globex/calls"]})
    assert r.status_code == 400 and "belongs to another tenant" in r.text
    assert "text/html" in r.headers["Content-Type"]


def test_manager_approves_from_the_queue(service: Service) -> None:
    with page(service, "alice") as alice:
        rid = alice.post("", data=FORM).headers["Location"].rsplit("/", 1)[1]
    with page(service, "maria") as maria:
        queue = maria.get("manage")
        assert f'data-request-id="{rid}"' in queue.text and "Churn model" in queue.text
        r = maria.post(f"requests/{rid}/approve", data={"comment": "fine"})
        assert r.status_code == 302
        assert "approved" in maria.get(f"requests/{rid}").text
        assert "Nothing is waiting" in maria.get("manage").text


def test_audit_page_is_for_security(service: Service) -> None:
    with page(service, "alice") as alice:
        alice.post("", data=FORM)
        assert alice.get("audit").status_code == 403
    with page(service, "sam") as sam:
        r = sam.get("audit", params={"tenant": "acme"})
    assert r.status_code == 200 and "request.file" in r.text and "Churn model" in r.text


def test_unauthenticated_people_are_sent_to_log_in(service: Service) -> None:
    with page(service, None) as anon:
        r = anon.get("")
    assert r.status_code == 302 and "oauth2/authorize" in r.headers["Location"]


def test_unknown_pages_are_404(service: Service) -> None:
    with page(service, "alice") as alice:
        assert alice.get("nowhere").status_code == 404
        assert alice.get("api/v1/nowhere").json()["status"] == 404


def test_an_approved_request_links_to_its_notebook_server(service: Service) -> None:
    with page(service, "alice") as alice:
        rid = alice.post("", data=FORM).headers["Location"].rsplit("/", 1)[1]
    with page(service, "maria") as maria:
        maria.post(f"requests/{rid}/approve", data={})
        assert "start-server" not in maria.get(f"requests/{rid}").text  # not maria's request
    with page(service, "alice") as alice:
        assert f'href="/hub/spawn/alice/r{rid}"' in alice.get(f"requests/{rid}").text
