"""``python -m lume_async``: the ``lume`` command line."""

from __future__ import annotations

from ._cli import main

if __name__ == "__main__":
    main(prog_name="lume")
