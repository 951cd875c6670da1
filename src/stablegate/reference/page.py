"""``GET /docs``: the merchant API reference, rendered on the server from the OpenAPI schema.

It replaces Swagger UI, whose page loads its script and styles from a CDN: this one is plain
HTML with one stylesheet from the package, under the cashier's strict Content-Security-Policy,
and loads nothing from anywhere else. ``/openapi.json`` stays for tools.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from stablegate.web.pages import load_static, page_headers, page_templates

router = APIRouter(include_in_schema=False)

_METHODS = ("get", "post", "put", "patch", "delete")
_REF_PREFIX = "#/components/schemas/"
_CSS = load_static("stablegate.reference", ("reference.css",))["reference.css"]

_templates = page_templates("stablegate.reference")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    description: str
    where: str = ""


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    anchor: str
    summary: str
    description: str
    parameters: list[Field] = field(default_factory=list)
    body: str = ""
    responses: list[Field] = field(default_factory=list)


def type_text(schema: dict[str, Any]) -> str:
    """A short, human reading of a JSON schema: ``string (max 64)``, ``OrderOut``, ``a | null``."""
    if "$ref" in schema:
        return str(schema["$ref"]).removeprefix(_REF_PREFIX)
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return " | ".join(type_text(part) for part in schema[combinator])
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"array of {type_text(schema.get('items', {}))}"
    notes = [
        f"{label} {schema[key]}"
        for key, label in (
            ("format", "format"),
            ("minLength", "min length"),
            ("maxLength", "max length"),
            ("minimum", "min"),
            ("maximum", "max"),
            ("pattern", "pattern"),
        )
        if key in schema
    ]
    if "enum" in schema:
        notes.append("one of " + ", ".join(str(value) for value in schema["enum"]))
    return f"{kind} ({'; '.join(notes)})" if notes else kind


def _body_type(spec: dict[str, Any]) -> str:
    content = spec.get("requestBody", {}).get("content", {})
    return "; ".join(
        f"{media}: {type_text(item.get('schema', {}))}" for media, item in content.items()
    )


def _responses(spec: dict[str, Any]) -> list[Field]:
    rows = []
    for status, response in spec.get("responses", {}).items():
        content = response.get("content", {})
        types = ", ".join(type_text(item.get("schema", {})) for item in content.values())
        rows.append(Field(str(status), types, False, str(response.get("description", ""))))
    return rows


def operations(schema: dict[str, Any]) -> list[Operation]:
    found = []
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            spec = item.get(method)
            if spec is None:
                continue
            parameters = [
                Field(
                    name=str(p["name"]),
                    type=type_text(p.get("schema", {})),
                    required=bool(p.get("required", False)),
                    description=str(p.get("description", "")),
                    where=str(p.get("in", "")),
                )
                for p in spec.get("parameters", [])
            ]
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    anchor=str(spec.get("operationId", f"{method}{path}")),
                    summary=str(spec.get("summary", "")),
                    description=str(spec.get("description", "")),
                    parameters=parameters,
                    body=_body_type(spec),
                    responses=_responses(spec),
                )
            )
    return found


def render_reference(schema: dict[str, Any]) -> str:
    info = schema.get("info", {})
    models = {
        name: json.dumps(model, indent=2, ensure_ascii=False)
        for name, model in sorted(schema.get("components", {}).get("schemas", {}).items())
    }
    return _templates.get_template("reference.html").render(
        title=str(info.get("title", "API")),
        version=str(info.get("version", "")),
        description=str(info.get("description", "")),
        operations=operations(schema),
        models=models,
        css_url=f"/docs/static/reference.css?v={_CSS.version}",
    )


@router.get("/docs")
async def reference_page(request: Request) -> HTMLResponse:
    state = request.app.state
    # The schema does not change while the app runs: render once.
    html = getattr(state, "reference_html", None)
    if html is None:
        html = state.reference_html = render_reference(request.app.openapi())
    return HTMLResponse(html, headers=page_headers())


@router.get("/docs/static/reference.css")
async def reference_css() -> Response:
    return Response(
        _CSS.content,
        media_type=_CSS.media_type,
        headers={"Cache-Control": "public, max-age=31536000, immutable", "ETag": _CSS.version},
    )
