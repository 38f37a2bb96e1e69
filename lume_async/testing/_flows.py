"""The flows the emulator knows from start, and their real row mappings.

Each flow version maps a source record to its target schema: fields are renamed, cast and checked.
A record that fails any check becomes a reject ``{index, source_record, errors}`` instead of a row.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

__all__ = ["FLOWS", "FLOW_VERSIONS", "FlowVersion", "flow_json"]

Mapped = tuple[dict[str, Any] | None, list[dict[str, str]]]
_FLOWS_CREATED_AT = "2024-01-15T09:00:00.000Z"


def _err(field: str, code: str, message: str) -> dict[str, str]:
    return {"field": field, "error_code": code, "message": message}


def _text(record: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in record:
            return record[key]
    return None


def _full_name(rec: dict[str, Any], out: dict[str, Any], errs: list[dict[str, str]]) -> None:
    value = _text(rec, ("name", "full_name"))
    if value is None:
        errs.append(_err("full_name", "missing_field", "name is required"))
    elif not isinstance(value, str) or not value.strip():
        errs.append(_err("full_name", "empty_value", "name must be a non-empty string"))
    else:
        out["full_name"] = value.strip()


def _email(rec: dict[str, Any], out: dict[str, Any], errs: list[dict[str, str]]) -> None:
    value = rec.get("email")
    if not isinstance(value, str) or "@" not in value:
        errs.append(_err("email", "invalid_email", "email must contain '@'"))
    else:
        out["email"] = value.strip().lower()


def _age(rec: dict[str, Any], out: dict[str, Any], errs: list[dict[str, str]]) -> None:
    value = rec.get("age")
    try:
        if isinstance(value, bool) or value is None:
            raise ValueError
        age = int(float(value)) if isinstance(value, str) else int(value)
    except (TypeError, ValueError, OverflowError):
        errs.append(_err("age", "invalid_type", "age must be an integer"))
        return
    if not 0 <= age <= 150:
        errs.append(_err("age", "out_of_range", "age must be between 0 and 150"))
    else:
        out["age"] = age


def _iso_date(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        return None


def _signup_date(rec: dict[str, Any], out: dict[str, Any], errs: list[dict[str, str]]) -> None:
    value = rec.get("signup_date")
    if value is None:
        out["signup_date"] = None
        return
    parsed = _iso_date(value)
    if parsed is None:
        errs.append(_err("signup_date", "invalid_date", "signup_date must be an ISO date"))
    else:
        out["signup_date"] = parsed


def _country(rec: dict[str, Any], out: dict[str, Any], errs: list[dict[str, str]]) -> None:
    value = rec.get("country")
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{2}", value.strip()):
        errs.append(_err("country", "invalid_country", "country must be a 2-letter code"))
    else:
        out["country"] = value.strip().upper()


def _invoice_id(rec: dict[str, Any], out: dict[str, Any], errs: list[dict[str, str]]) -> None:
    value = _text(rec, ("invoice_id", "id"))
    if value is None or (isinstance(value, str) and not value.strip()):
        errs.append(_err("invoice_id", "missing_field", "invoice_id is required"))
    elif not isinstance(value, str | int) or isinstance(value, bool):
        errs.append(_err("invoice_id", "invalid_type", "invoice_id must be a string"))
    else:
        out["invoice_id"] = str(value).strip()


def _amount(rec: dict[str, Any], out: dict[str, Any], errs: list[dict[str, str]]) -> None:
    value = rec.get("amount")
    try:
        if isinstance(value, bool) or value is None:
            raise ValueError
        amount = float(value)
    except (TypeError, ValueError, OverflowError):
        errs.append(_err("amount", "invalid_type", "amount must be a number"))
        return
    if not amount >= 0 or amount == float("inf"):
        errs.append(_err("amount", "out_of_range", "amount must be >= 0"))
    else:
        out["amount"] = amount


def _currency(rec: dict[str, Any], out: dict[str, Any], errs: list[dict[str, str]]) -> None:
    value = rec.get("currency")
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value.strip()):
        errs.append(_err("currency", "invalid_currency", "currency must be a 3-letter code"))
    else:
        out["currency"] = value.strip().upper()


def _issued_at(rec: dict[str, Any], out: dict[str, Any], errs: list[dict[str, str]]) -> None:
    value = rec.get("issued_at")
    parsed: str | None = None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()
        except ValueError:
            parsed = _iso_date(value)
    if parsed is None:
        errs.append(_err("issued_at", "invalid_date", "issued_at must be an ISO date or time"))
    else:
        out["issued_at"] = parsed


FieldRule = Callable[[dict[str, Any], dict[str, Any], list[dict[str, str]]], None]


class FlowVersion:
    """One version of a flow: its target schema and the rules that produce it."""

    def __init__(
        self, flow: str, version: str, schema: dict[str, dict[str, Any]], rules: list[FieldRule]
    ) -> None:
        self.flow = flow
        self.version = version
        self.id = f"{flow}:{version}"
        self.schema = schema
        self.rules = rules
        # Errors a synthetic bad row can carry, one per field rule that can fail on purpose.
        self.error_kinds: tuple[tuple[str, str], ...] = tuple(
            (field, spec["synthetic_error"])
            for field, spec in schema.items()
            if "synthetic_error" in spec
        )

    @property
    def fields_checked(self) -> int:
        return len(self.rules)

    def map_record(self, record: Any) -> Mapped:
        """Map one source record: ``(row, [])`` when valid, ``(None, errors)`` when rejected."""
        if not isinstance(record, dict):
            return None, [_err("$", "invalid_type", "a source record must be a JSON object")]
        out: dict[str, Any] = {}
        errs: list[dict[str, str]] = []
        for rule in self.rules:
            rule(record, out, errs)
        return (None, errs) if errs else (out, errs)

    def to_json(self) -> dict[str, Any]:
        schema = {
            name: {k: v for k, v in spec.items() if k != "synthetic_error"}
            for name, spec in self.schema.items()
        }
        return {
            "version": self.version,
            "id": self.id,
            "created_at": _FLOWS_CREATED_AT,
            "target_schema": schema,
        }


def _f(type_: str, source: str, required: bool, error: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "source": source,
        "required": required,
        "synthetic_error": error,
        **extra,
    }


_CUSTOMER_V1 = {
    "full_name": _f("string", "name", True, "empty_value"),
    "email": _f("string", "email", True, "invalid_email"),
    "age": _f("integer", "age", True, "out_of_range", minimum=0, maximum=150),
    "signup_date": _f("date", "signup_date", False, "invalid_date"),
}
_CUSTOMER_V2 = {**_CUSTOMER_V1, "country": _f("string", "country", True, "invalid_country")}
_INVOICE_V1 = {
    "invoice_id": _f("string", "invoice_id", True, "missing_field"),
    "amount": _f("number", "amount", True, "out_of_range", minimum=0),
    "currency": _f("string", "currency", True, "invalid_currency"),
    "issued_at": _f("date-time", "issued_at", True, "invalid_date"),
}

FLOW_VERSIONS: dict[str, FlowVersion] = {
    fv.id: fv
    for fv in (
        FlowVersion(
            "customer_cleaner", "v1", _CUSTOMER_V1, [_full_name, _email, _age, _signup_date]
        ),
        FlowVersion(
            "customer_cleaner",
            "v2",
            _CUSTOMER_V2,
            [_full_name, _email, _age, _signup_date, _country],
        ),
        FlowVersion(
            "invoice_mapper", "v1", _INVOICE_V1, [_invoice_id, _amount, _currency, _issued_at]
        ),
    )
}

FLOWS: dict[str, str] = {
    "customer_cleaner": "Cleans customer records: trims names, normalises e-mails, checks ages.",
    "invoice_mapper": "Maps raw invoices to the ledger schema with typed amounts and currencies.",
}


def flow_json(name: str) -> dict[str, Any]:
    versions = [fv.to_json() for fv in FLOW_VERSIONS.values() if fv.flow == name]
    return {"name": name, "description": FLOWS[name], "versions": versions}
