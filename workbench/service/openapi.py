"""The OpenAPI 3.1 document, built from the routes and each endpoint's `Meta`."""

from __future__ import annotations

import re
from typing import Any

from workbench.service.base import Meta, Param

METHODS = ("get", "post", "put", "patch", "delete")
ERROR_SCHEMA = {
    "type": "object",
    "required": ["status", "error"],
    "properties": {"status": {"type": "integer"}, "error": {"type": "string"}},
}
REASONS = {
    200: "OK",
    201: "Created",
    400: "Invalid input; the message says what is wrong",
    401: "No valid JupyterHub token",
    403: "Not allowed for this caller",
    404: "No such object (or not one you may see)",
    409: "The object's state does not allow this",
    413: "Request body too large",
    503: "A part it depends on is down; nothing was done",
}


def _param_schema(p: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": p.type}
    if p.enum:
        schema["enum"] = list(p.enum)
    if p.type == "integer":
        schema.update(minimum=0, maximum=10**12 - 1)
    return schema


def build(routes: list[tuple[str, type]], base: str, version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for path, handler in routes:
        item: dict[str, Any] = {}
        for method in METHODS:
            meta: Meta | None = getattr(getattr(handler, method, None), "__wb_meta__", None)
            if meta is None:
                continue
            op: dict[str, Any] = {
                "operationId": f"{method}_{re.sub(r'[^a-z]+', '_', path)}".strip("_"),
                "summary": meta.summary,
                "security": [{"token": []}],
                "parameters": [
                    {
                        "name": p.name,
                        "in": p.where,
                        "required": p.where == "path",
                        "description": p.description,
                        "schema": _param_schema(p),
                    }
                    for p in meta.params
                ],
                "responses": {
                    str(meta.ok): {
                        "description": REASONS[meta.ok],
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **{
                        str(code): {
                            "description": REASONS[code],
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Error"}
                                }
                            },
                        }
                        for code in (*meta.errors, 503)
                    },
                },
            }
            if meta.scope:
                op["description"] = f"Needs the JupyterHub scope `{meta.scope}`."
            if meta.body is not None:
                name = meta.body.__name__
                schemas[name] = meta.body.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                )
                op["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}
                    },
                }
                op["responses"]["413"] = {"description": REASONS[413]}
            item[method] = op
        paths["/" + path] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Workbench API",
            "version": version,
            "description": "Access requests, approvals and the audit log of the workbench.",
        },
        "servers": [{"url": base.rstrip("/")}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`token <JupyterHub API token>`",
                }
            },
        },
    }


def tornado_pattern(path: str, handler: type) -> str:
    """`requests/{id}` → `requests/([0-9]{1,12})`, using the endpoint's declared params."""
    params: dict[str, Param] = {}
    for method in METHODS:
        meta = getattr(getattr(handler, method, None), "__wb_meta__", None)
        if meta:
            params.update({p.name: p for p in meta.params if p.where == "path"})

    def group(m: re.Match[str]) -> str:
        p = params.get(m.group(1))
        if p is not None and p.enum:
            return "(" + "|".join(re.escape(e) for e in p.enum) + ")"
        if p is not None and p.type == "integer":
            return "([0-9]{1,12})"
        return "([^/]+)"

    return re.sub(r"\{(\w+)\}", group, path)
