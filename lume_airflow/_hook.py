"""``LumeHook``: Lume clients built from an Airflow connection of type ``lume``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow.sdk import BaseHook, Connection

import lume_sync
from lume_async import AsyncLume, LumeError

from ._validation import check_conn_id

__all__ = ["LumeHook", "client_arguments"]


def client_arguments(conn: Connection) -> dict[str, Any]:
    """``api_key`` and ``base_url`` for a client, read from a ``lume`` connection.

    The host is the service's base URL (``https://`` is assumed when it has no scheme), followed
    by the schema as a path when one is set (a connection URI's path), and the password is the
    API key. Either may be left empty, and the client then reads
    ``LUME_BASE_URL`` / ``LUME_API_KEY`` from the environment as usual.
    """
    base_url: str | None = None
    host = (conn.host or "").strip()
    if host:
        base_url = host if "://" in host else f"https://{host}"
        base_url = base_url.rstrip("/")
        parts = urlsplit(base_url)
        if conn.port and parts.port is None:
            base_url = urlunsplit(parts._replace(netloc=f"{parts.netloc}:{conn.port}"))
        # A connection URI's path (``lume://:KEY@gw.example.com/lume``) is read as the schema;
        # it is the base URL's path. "http" or "https" there (how HTTP connections name the
        # scheme) is not a path.
        path = (conn.schema or "").strip().strip("/")
        if path and path.lower() not in ("http", "https"):
            base_url = f"{base_url}/{path}"
    return {"api_key": conn.password or None, "base_url": base_url}


class LumeHook(BaseHook):
    """Clients for the Lume service of one Airflow connection (``lume_default`` unless named).

    The connection's host is the service's base URL and its password is the API key, e.g.
    ``AIRFLOW_CONN_LUME_DEFAULT='{"conn_type": "lume", "host": "https://api.lume.ai",
    "password": "..."}'``. Close the clients you get (both are context managers).
    """

    conn_name_attr = "lume_conn_id"
    default_conn_name = "lume_default"
    conn_type = "lume"
    hook_name = "Lume"

    def __init__(self, lume_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.lume_conn_id = check_conn_id(lume_conn_id)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """How Airflow's connection form shows a ``lume`` connection: URL and key only."""
        return {
            "hidden_fields": ["schema", "login", "extra"],
            "relabeling": {"host": "Base URL", "password": "API key"},
            "placeholders": {"host": "https://api.lume.ai", "port": "(part of the base URL)"},
        }

    def get_client(self) -> lume_sync.Lume:
        """A blocking client (``lume_sync.Lume``) for this connection."""
        return lume_sync.Lume(**client_arguments(self.get_connection(self.lume_conn_id)))

    async def get_async_client(self) -> AsyncLume:
        """An asyncio client (``lume_async.AsyncLume``) for this connection.

        The connection is looked up without blocking the event loop, so this is safe to call
        from a trigger.
        """
        conn = await self.aget_connection(self.lume_conn_id)
        return AsyncLume(**client_arguments(conn))

    def get_conn(self) -> lume_sync.Lume:
        """The same as ``get_client()``: the name Airflow's hooks share."""
        return self.get_client()

    def test_connection(self) -> tuple[bool, str]:
        """Check the URL and key by listing the flows the key can see."""
        try:
            with self.get_client() as lume:
                flows = lume.flows.list().collect()
        except LumeError as exc:
            return False, str(exc)
        return True, f"Connected: {len(flows)} flows visible"
