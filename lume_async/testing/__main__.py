"""``python -m lume_async.testing``: serve the emulator until interrupted."""

from __future__ import annotations

import sys

from ._main import main

if __name__ == "__main__":
    sys.exit(main())
