"""What Airflow's providers manager reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from lume_async import __version__

__all__ = ["get_provider_info"]

_MODULES = ["lume_airflow"]


def get_provider_info() -> dict[str, Any]:
    """The provider's description: its connection type, hook, operators, sensors and triggers."""
    integration = "Lume"
    return {
        "package-name": "lume-sdk",
        "name": "Lume",
        "description": "Start Lume data-transformation runs and wait for them, deferrably.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": integration,
                "external-doc-url": "https://lume.ai",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": integration, "python-modules": _MODULES}],
        "operators": [{"integration-name": integration, "python-modules": _MODULES}],
        "sensors": [{"integration-name": integration, "python-modules": _MODULES}],
        "triggers": [{"integration-name": integration, "python-modules": _MODULES}],
        "connection-types": [
            {
                "connection-type": "lume",
                "hook-class-name": "lume_airflow.LumeHook",
                "hook-name": "Lume",
            }
        ],
    }
