"""Hypothesis profiles: ``default`` for every run, ``thorough`` for deep runs.

``default``: 50 examples per test, derandomized (the same examples on every run, so a red run
is a regression, never the luck of the draw). ``thorough``: 20 times the examples, drawn afresh
each run. Choose with ``LUME_HYPOTHESIS_PROFILE=thorough python -m pytest``. A test that sets
its own ``max_examples`` writes it as ``examples(n)`` so that the thorough profile scales it too.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["THOROUGH", "examples", "load"]

THOROUGH = os.environ.get("LUME_HYPOTHESIS_PROFILE", "default") == "thorough"


def examples(count: int) -> int:
    """``count`` examples, or twenty times as many in the thorough profile."""
    return count * 20 if THOROUGH else count


def load() -> None:
    # No deadline and no "too slow" check: both bound wall time, which a loaded machine
    # stretches at random; that would be a flake, not a finding.
    untimed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("default", untimed, max_examples=50, derandomize=True, database=None)
    settings.register_profile("thorough", untimed, max_examples=1000)
    settings.load_profile("thorough" if THOROUGH else "default")
