"""JSON errors with a clear message: every refusal of the API goes through :class:`ApiError`."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 422: "invalid_parameter", 503: "unavailable"}


class ApiError(Exception):
    """An answer other than 2xx: status, a stable code, and a message saying what to do."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="netquality"'} if status == 401 else None
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


async def api_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if exc.status_code != 404 else f"no such endpoint: {request.url.path}"
    return error_response(exc.status_code, _CODES.get(exc.status_code, "error"), str(message))
