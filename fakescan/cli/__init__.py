"""The ``fakescan`` command line: thin command modules that parse, call the library and
render (``render.py``).

Commands live by job: ``data.py`` (models, data synth|stats|dedup|split), ``train.py``
(train, eval, calibrate), ``scan.py`` (scan), ``ship.py`` (export, bench, demo, report).
Heavy libraries (torch, DALI, onnxruntime) are imported inside the commands that need them,
so ``fakescan --help`` answers fast. ``main``
is the entry point: the one place environment variables are read and ``FakescanError``
becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import os
import sys

from fakescan.cli import data, scan, ship, train  # noqa: F401  (registers the commands)
from fakescan.cli.app import app, err
from fakescan.errors import FakescanError

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    from fakescan.settings import configure_from

    configure_from(os.environ)
    try:
        app()
    except FakescanError as e:
        err.print(f"fakescan: error: {e}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("fakescan: interrupted")
        sys.exit(130)
