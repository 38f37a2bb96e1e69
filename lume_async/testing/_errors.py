"""The emulator's one error type: status, code and detail, rendered by the middleware."""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "validation_error"]


class ApiError(Exception):
    """An error answer: ``{"detail", "error_id", "code", **extra}`` with ``status``."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str | list[dict[str, Any]],
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra or {}
        self.headers = headers or {}


def validation_error(loc: list[str | int], msg: str, type_: str) -> ApiError:
    return ApiError(422, "validation_error", [{"loc": loc, "msg": msg, "type": type_}])
