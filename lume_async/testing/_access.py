"""Run permissions: principals, their groups, and who may read or manage each run.

Each API key belongs to a principal of one tenant. A run records who created it, its owner and four
lists; the owner and its managers (by name or group) may read and manage it, its monitors may read
it, tenant admins may do anything, and anyone else cannot tell it exists. Admins are checked first,
so the single-key case (the default key is an admin) costs one attribute read per request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._errors import ApiError

if TYPE_CHECKING:
    from ._state import Tenant

__all__ = [
    "LIST_FIELDS",
    "PERMISSION_FIELDS",
    "Grants",
    "Principal",
    "denied",
    "names_permissions",
    "new_principal",
]

LIST_FIELDS = ("monitoring_by", "monitoring_groups", "managing_by", "managing_groups")
PERMISSION_FIELDS = ("run_owner", *LIST_FIELDS)
MAX_NAME = 254
_REFUSED = {
    "update": "update it",
    "update_permissions": "change who may see or manage it",
    "cancel": "cancel it",
}


class Principal:
    """Who an API key acts as: a name (email-like) in a tenant, with groups; maybe an admin."""

    __slots__ = ("admin", "groups", "name", "tenant")

    def __init__(
        self, name: str, tenant: Tenant, *, groups: Iterable[str] = (), admin: bool = False
    ) -> None:
        self.name = name
        self.tenant = tenant
        self.groups = frozenset(groups)
        self.admin = admin

    def __repr__(self) -> str:
        return f"Principal({self.name!r}, tenant={self.tenant.name!r}, admin={self.admin})"

    def rights(self) -> str:
        """What decides which runs this principal may see: its name, admin flag and groups.

        Two keys of one name but other groups (or admin flags) see other runs, so a request of
        one is not the same request as the other's.
        """
        return repr((self.name, self.admin, tuple(sorted(self.groups))))


def new_principal(tenant: Tenant, name: object, groups: object, admin: object) -> Principal:
    """A principal of ``tenant``; TypeError or ValueError naming the argument when malformed."""
    if not isinstance(name, str):
        raise TypeError(f"principal must be a str, not {type(name).__name__}")
    if not name.strip() or len(name) > MAX_NAME:
        raise ValueError(f"principal must be 1 to {MAX_NAME} characters, not blank, got {name!r}")
    if isinstance(groups, str | bytes | dict) or not isinstance(groups, Iterable):
        raise TypeError(f"groups must be a list of str, not {type(groups).__name__}")
    checked: list[str] = []
    for i, group in enumerate(groups):
        if not isinstance(group, str):
            raise TypeError(f"groups[{i}] must be a str, not {type(group).__name__}")
        if not group.strip() or len(group) > MAX_NAME:
            raise ValueError(f"groups[{i}] must be 1 to {MAX_NAME} characters, got {group!r}")
        checked.append(group)
    if not isinstance(admin, bool):
        raise TypeError(f"admin must be a bool, not {type(admin).__name__}")
    return Principal(name, tenant, groups=checked, admin=admin)


def _unique(values: Iterable[str] | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values or ()))


class Grants:
    """Who a run belongs to and who else may read (monitor) or manage it."""

    __slots__ = (
        "created_by",
        "managing_by",
        "managing_groups",
        "monitoring_by",
        "monitoring_groups",
        "run_owner",
    )

    def __init__(self, created_by: str, body: dict[str, Any]) -> None:
        self.created_by = created_by
        self.run_owner: str = body.get("run_owner") or created_by
        self.monitoring_by = _unique(body.get("monitoring_by"))
        self.monitoring_groups = _unique(body.get("monitoring_groups"))
        self.managing_by = _unique(body.get("managing_by"))
        self.managing_groups = _unique(body.get("managing_groups"))

    def can_manage(self, who: Principal) -> bool:
        """Update, cancel and change the lists: admins, the owner and the managers."""
        if who.admin or who.name == self.run_owner or who.name in self.managing_by:
            return True
        return bool(who.groups) and not who.groups.isdisjoint(self.managing_groups)

    def can_read(self, who: Principal) -> bool:
        """Get, list, batch-get, results, rejects, logs, input: managers and monitors."""
        if self.can_manage(who) or who.name in self.monitoring_by:
            return True
        return bool(who.groups) and not who.groups.isdisjoint(self.monitoring_groups)

    def change(self, body: dict[str, Any]) -> None:
        """Apply the permission fields of a PATCH body: a list given replaces the run's."""
        owner = body.get("run_owner")
        if owner is not None:
            self.run_owner = owner
        for name in LIST_FIELDS:
            if name in body:
                setattr(self, name, _unique(body[name]))

    def to_json(self) -> dict[str, Any]:
        return {
            "created_by": self.created_by,
            "run_owner": self.run_owner,
            "monitoring_by": list(self.monitoring_by),
            "monitoring_groups": list(self.monitoring_groups),
            "managing_by": list(self.managing_by),
            "managing_groups": list(self.managing_groups),
        }


def names_permissions(body: dict[str, Any]) -> bool:
    """Whether a PATCH body changes who may see or manage the run."""
    return any(name in body for name in PERMISSION_FIELDS)


def denied(run_id: str, who: Principal, operation: str) -> ApiError:
    """The 403 of a principal who may read a run but not do ``operation`` to it."""
    return ApiError(
        403,
        "permission_denied",
        f"{who.name} may read run {run_id} but not {_REFUSED[operation]}: "
        "only its owner, its managers and tenant admins may",
        extra={"operation": operation},
    )
