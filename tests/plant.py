"""Planted failures: a valid image whose bytes end in a marker makes the probe fail that way
(an exception, a segfault, an exit, a hang), in whichever process decodes it.

``install`` plants them in this process (for Ray's ``worker_process_setup_hook``: the scan's
actors on every node of a test cluster); tests in one process monkeypatch ``planted_probe``.
"""

from __future__ import annotations

import os
import signal
import time

PLANTS = {  # marker at the end of a valid JPEG -> the row it must get
    b"PLANT:TypeError": "corrupt",
    b"PLANT:KeyError": "corrupt",
    b"PLANT:MemoryError": "too_large",
    b"PLANT:segfault": "decoder_crashed",
    b"PLANT:exit": "decoder_crashed",
    b"PLANT:hang": "timeout",
}


def planted_probe(real_probe):
    def probe_(data, *a, **kw):
        for marker in PLANTS:
            if data.endswith(marker):
                what = marker.split(b":")[1].decode()
                if what == "segfault":
                    os.kill(os.getpid(), signal.SIGSEGV)
                if what == "exit":
                    os._exit(3)
                if what == "hang":
                    time.sleep(3600)
                raise {"TypeError": TypeError, "KeyError": KeyError,
                       "MemoryError": MemoryError}[what]("planted by the test")
        return real_probe(data, *a, **kw)

    return probe_


def install() -> None:
    import fakescan.scanner.decoders as decoders

    decoders.probe = planted_probe(decoders.probe)
