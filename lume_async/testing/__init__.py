"""Testing tools: an embedded, stateful Lume emulator with fault injection and a virtual clock.

::

    from lume_async.testing import Emulator, FaultProfile

    async with Emulator(time_scale=100) as emu:     # or: with Emulator() as emu (background thread)
        lume = AsyncLume(api_key=emu.api_key, base_url=emu.url)
        emu.set_faults(FaultProfile(rate=0.2, seed=1))
        emu.advance(60)                               # skip a minute of run time
        with instant_retries(): ...                   # the client's retry waits take no real time
"""

from __future__ import annotations

from .._retry import instant_retries
from ._app import create_app
from ._emulator import Emulator
from ._faults import FaultProfile

__all__ = ["Emulator", "FaultProfile", "create_app", "instant_retries"]
