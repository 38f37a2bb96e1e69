"""Checks of who a run is shared with: its owner and its monitoring and managing lists."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ._base import bad_value, in_stable_order, wrong_type

__all__ = [
    "PERMISSION_LISTS",
    "check_permission_update",
    "check_principal",
    "check_principal_list",
]

PERMISSION_LISTS = ("monitoring_by", "monitoring_groups", "managing_by", "managing_groups")
"""The four lists of a run, in the order the API documents them."""
# The service's own limits (its OpenAPI document): a value past them is refused before sending.
MAX_PRINCIPAL = 254
MAX_PRINCIPALS = 100


def check_principal(value: object, name: str) -> str:
    """A principal or group: a str with something in it (``ana@example.com``, ``analysts``)."""
    if not isinstance(value, str):
        raise wrong_type(name, "a str", value)
    if not value.strip() or len(value) > MAX_PRINCIPAL:
        raise bad_value(name, f"a non-empty str of at most {MAX_PRINCIPAL} characters", value)
    return value


def check_principal_list(value: object, name: str) -> tuple[str, ...]:
    """A list (any iterable but a single str or a mapping) of principals or groups; a set's
    sorted."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise wrong_type(name, "a list of str (one str must be wrapped: [name])", value)
    checked = [check_principal(item, f"{name}[{i}]") for i, item in enumerate(value)]
    names = tuple(in_stable_order(value, checked))
    if len(names) > MAX_PRINCIPALS:
        raise ValueError(f"{name} may name at most {MAX_PRINCIPALS}, got {len(names)}")
    return names


def check_permission_update(
    *,
    run_owner: object,
    monitoring_by: object,
    monitoring_groups: object,
    managing_by: object,
    managing_groups: object,
) -> dict[str, object]:
    """The permission fields of a run update that are given (None: leave as it is).

    An empty list empties that list; ``run_owner`` hands the run to another principal.
    """
    body: dict[str, object] = {}
    if run_owner is not None:
        body["run_owner"] = check_principal(run_owner, "run_owner")
    lists = (monitoring_by, monitoring_groups, managing_by, managing_groups)
    for name, value in zip(PERMISSION_LISTS, lists, strict=True):
        if value is not None:
            body[name] = list(check_principal_list(value, name))
    return body
