"""One renderer for every error: ``{"error": {"code", "message"}}``, never a stack trace.

Also the error's schema (:class:`ErrorResponse`, in every route's documented responses) and the
validation of a parsed JSON body against a request model, failing as the handler would.
"""

from __future__ import annotations

from typing import Any, TypeVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from stablegate.errors import GatewayError, InvalidRequest

log = structlog.get_logger("stablegate.api")

M = TypeVar("M", bound=BaseModel)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}

# Fields whose problems have their own code (the rest are invalid_request).
_FIELD_CODES = {"amount": "invalid_amount", "notifyUrl": "invalid_notify_url"}
# Problems with their own code whatever the field: a field the model does not know.
_TYPE_CODES = {"extra_forbidden": "unknown_field"}


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's documented error answers (``responses=`` of the route decorator)."""
    return {status: {"model": ErrorResponse} for status in statuses}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def validation_message(exc: ValidationError | RequestValidationError) -> tuple[str, str]:
    """(code, message) for the first validation problem, naming the field as the client sent it.
    A field the model does not know comes first (``unknown_field``): a misspelt name is the
    likelier cause of any other problem, such as a required field missing."""
    errors = exc.errors()
    if not errors:
        return "invalid_request", "request is not valid"
    unknown = [e for e in errors if e.get("type") in _TYPE_CODES]
    first = unknown[0] if unknown else errors[0]
    location = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    field = ".".join(location) or "request"
    if unknown:
        code = _TYPE_CODES[str(first["type"])]
        return code, f"{field}: unknown field (field names are camelCase)"
    code = _FIELD_CODES.get(location[0] if location else "", "invalid_request")
    return code, f"{field}: {first.get('msg', 'invalid value')}"


def json_body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` of a route that reads its JSON body itself (signed requests hash the raw
    bytes, so FastAPI never parses it): the body's schema for the OpenAPI document."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema(by_alias=True)}},
        }
    }


def validated(model: type[M], data: dict[str, Any]) -> M:
    """``data`` as ``model``, or 400 with the code and message the handler gives a bad request."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        code, message = validation_message(exc)
        raise InvalidRequest(message, code=code) from None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway_error(_request: Request, exc: GatewayError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        code, message = validation_message(exc)
        return error_response(400, code, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code
        return error_response(exc.status_code, code, message, dict(exc.headers or {}) or None)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", error_type=type(exc).__name__)
        return error_response(500, "internal_error", "internal error; the operator has been told")
