"""Testing tools: an embedded, stateful Lume emulator with fault injection and a virtual clock.

::

    from lume_async.testing import Emulator, FaultProfile, VirtualClock

    async with Emulator(time_scale=100) as emu:     # or: with Emulator() as emu (background thread)
        lume = AsyncLume(api_key=emu.api_key, base_url=emu.url, clock=VirtualClock())
        emu.set_faults(FaultProfile(rate=0.2, seed=1))
        emu.advance(60)                               # skip a minute of run time
        ...                                           # retries and waits take no real time
"""

from __future__ import annotations

from ._app import create_app
from ._clock import VirtualClock
from ._emulator import Emulator
from ._faults import FaultProfile

__all__ = ["Emulator", "FaultProfile", "VirtualClock", "create_app"]
