"""The OpenAPI document, and request-body validation against its own schemas.

Validating bodies with the very schemas the document publishes keeps the two in step: whatever the
document calls invalid is a 422 with ``[{loc, msg, type}]``, and nothing else is. Only the JSON
Schema keywords the document uses are implemented.
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from ._errors import ApiError, validation_error

__all__ = [
    "openapi_bytes",
    "openapi_doc",
    "request_body",
    "request_json",
    "validate",
    "validated",
]

_DOC_PATH = Path(__file__).with_name("openapi.json")
Issue = dict[str, Any]


@functools.cache
def openapi_bytes() -> bytes:
    return _DOC_PATH.read_bytes()


@functools.cache
def openapi_doc() -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(openapi_bytes())
    return doc


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str]:
    # JSON Schema's "$" never matches before a trailing newline, Python's does: anchor at the end.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = openapi_doc()
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return _resolve(node)


def _is_type(value: Any, type_: str) -> bool:
    if type_ == "object":
        return isinstance(value, dict)
    if type_ == "array":
        return isinstance(value, list)
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "boolean":
        return isinstance(value, bool)
    if type_ == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if type_ == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if type_ == "number":
        return isinstance(value, int | float) and math.isfinite(value)
    return False


def validate(schema_name: str, value: Any) -> list[Issue]:
    """Issues of ``value`` against ``components.schemas[schema_name]``; empty when valid."""
    issues: list[Issue] = []
    _check(openapi_doc()["components"]["schemas"][schema_name], value, ["body"], issues)
    return issues


def validated(schema_name: str, value: Any) -> dict[str, Any]:
    """``value``, valid against ``components.schemas[schema_name]``; else a 422 of its issues."""
    issues = validate(schema_name, value)
    if issues:
        raise ApiError(422, "validation_error", issues)
    result: dict[str, Any] = value
    return result


async def request_json(request: web.Request) -> Any:
    """The request's JSON body; a 422 when there is none or it is not JSON."""
    raw = await request.read()
    if not raw:
        raise validation_error(["body"], "A JSON body is required", "missing")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise validation_error(["body"], f"Invalid JSON: {exc}", "json_invalid") from exc


async def request_body(request: web.Request, schema_name: str) -> dict[str, Any]:
    """The request's JSON body, valid against ``components.schemas[schema_name]``."""
    return validated(schema_name, await request_json(request))


def _issue(issues: list[Issue], loc: list[str | int], msg: str, type_: str) -> None:
    issues.append({"loc": list(loc), "msg": msg, "type": type_})


def _check(schema: dict[str, Any], value: Any, loc: list[str | int], issues: list[Issue]) -> None:
    schema = _resolve(schema)
    types = schema.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else types
        if not any(_is_type(value, t) for t in allowed):
            _issue(issues, loc, f"Input should be of type {' or '.join(allowed)}", "type_error")
            return
    if "enum" in schema and value not in schema["enum"]:
        _issue(issues, loc, f"Input should be one of {schema['enum']}", "enum")
    if isinstance(value, str):
        _check_string(schema, value, loc, issues)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            _issue(issues, loc, f"Input should be >= {schema['minimum']}", "greater_than_equal")
        if "maximum" in schema and value > schema["maximum"]:
            _issue(issues, loc, f"Input should be <= {schema['maximum']}", "less_than_equal")
    elif isinstance(value, list):
        _check_array(schema, value, loc, issues)
    elif isinstance(value, dict):
        _check_object(schema, value, loc, issues)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            matches = 0
            for sub in schema[key]:
                sub_issues: list[Issue] = []
                _check(sub, value, loc, sub_issues)
                matches += not sub_issues
            if (key == "anyOf" and matches == 0) or (key == "oneOf" and matches != 1):
                hint = schema.get("description", f"Input should match {key}")
                _issue(issues, loc, hint, key)


def _check_string(
    schema: dict[str, Any], value: str, loc: list[str | int], issues: list[Issue]
) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        _issue(
            issues,
            loc,
            f"String should have at least {schema['minLength']} characters",
            "too_short",
        )
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        _issue(
            issues, loc, f"String should have at most {schema['maxLength']} characters", "too_long"
        )
    if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
        _issue(
            issues, loc, f"String should match pattern {schema['pattern']!r}", "pattern_mismatch"
        )


def _check_array(
    schema: dict[str, Any], value: list[Any], loc: list[str | int], issues: list[Issue]
) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        _issue(issues, loc, f"List should have at least {schema['minItems']} items", "too_short")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        _issue(issues, loc, f"List should have at most {schema['maxItems']} items", "too_long")
    items = schema.get("items")
    if items:
        for i, item in enumerate(value):
            _check(items, item, [*loc, i], issues)
            if len(issues) > 20:
                return


def _check_object(
    schema: dict[str, Any], value: dict[str, Any], loc: list[str | int], issues: list[Issue]
) -> None:
    props: dict[str, Any] = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            _issue(issues, [*loc, name], "Field required", "missing")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in props:
            _check(props[name], item, [*loc, name], issues)
        elif extra is False:
            _issue(issues, [*loc, name], "Extra inputs are not permitted", "extra_forbidden")
        elif isinstance(extra, dict):
            _check(extra, item, [*loc, name], issues)
