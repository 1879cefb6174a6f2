"""Compute that belongs to requests: server sessions, their GPU/CPU-hour use, and the reaper
that ends servers of ended, idle or over-budget requests (scale to zero)."""

SERVER_PREFIX = "r"


def server_name(request_id: int) -> str:
    """The named server of a request: `r7` for request 7 (one server per request)."""
    return f"{SERVER_PREFIX}{request_id}"
