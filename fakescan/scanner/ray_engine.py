"""The scan inside Ray Data: beyond one node, an existing distributed engine runs the core.

Joining a cluster: ``address`` (``--ray-address`` / ``RAY_ADDRESS``) is checked with a plain
TCP connection first, so a wrong one is one line in seconds instead of Ray's minutes of
retries; Ray's token authentication is Ray's (``RAY_AUTH_MODE``, ``RAY_AUTH_TOKEN``,
``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``), with one default chosen by the entry point
(``auth_mode``); every failure to join, or of the cluster mid-scan, is a ``ClusterError``.

Paths (as bytes, so names that are not UTF-8 survive Arrow) flow through ``map_batches`` into
``ScanActor``, a stateful class that loads the model once per actor and calls the same
``ScanCore`` as a local scan; rows come back as JSON strings and are written by the driver
with the usual output (resume, lock, fsync). Inputs are fed in chunks so a list of tens of
millions of paths never sits in the driver's memory. ``ray`` is optional: ``pip install
'fakescan[ray]'``; every node needs fakescan installed and read access to the paths.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from fakescan.device import set_threads
from fakescan.errors import ClusterError, UsageError
from fakescan.scanner.core import build_core
from fakescan.scanner.options import ScanOptions
from fakescan.scanner.rows import Row

CHUNK = 100_000  # paths per Ray dataset: bounds driver memory for endless input streams


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError(
            "--engine ray needs Ray Data: pip install 'fakescan[ray]' (or pip install "
            "'ray[data]')"
        ) from None
    return ray


def auth_mode(env: dict[str, str] | Any) -> str | None:
    """The ``RAY_AUTH_MODE`` a client should run with, for an entry point to set before Ray
    is imported (Ray reads it once): the user's own if set; else ``token`` when a token is at
    hand (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``, or ``~/.ray/auth_token``, which
    ``ray start`` writes), since clusters started by ``ray start`` require one and clusters
    without authentication accept such a client too; else ``None`` (Ray's default)."""
    if env.get("RAY_AUTH_MODE"):
        return env["RAY_AUTH_MODE"]
    if env.get("RAY_AUTH_TOKEN"):
        return "token"
    path = env.get("RAY_AUTH_TOKEN_PATH") or os.path.join(os.path.expanduser("~"), ".ray",
                                                            "auth_token")
    return "token" if os.path.isfile(path) else None


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A TCP connection to ``HOST:PORT`` or ``ray://HOST:PORT``, or ``ClusterError``."""
    import socket

    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ClusterError(f"Ray address {address!r}: expected HOST:PORT (the head node's port, "
                           "6379 unless `ray start --port` said otherwise) or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        why = e.strerror or type(e).__name__.replace("Error", "").lower() or "no answer"
        raise ClusterError(f"cannot reach a Ray cluster at {address}: {why.lower()}; is "
                           "`ray start --head` running there, and is this the address it "
                           "printed?") from None


def _join_failure(e: BaseException, address: str | None, native: str) -> ClusterError:
    """One line for what ``ray.init`` raised (and what Ray printed meanwhile)."""
    chain, x = [], e
    while x is not None and len(chain) < 5:
        chain.append(f"{type(x).__name__}: {x}")
        x = x.__cause__ or x.__context__
    text = " ".join(chain) + " " + native
    where = f"the Ray cluster at {address}" if address else "Ray"
    if "InvalidAuthToken" in text or "AuthenticationError" in text or "Unauthenticated" in text:
        mode = os.environ.get("RAY_AUTH_MODE") or "disabled"
        return ClusterError(
            f"{where} requires token authentication and refused this client (RAY_AUTH_MODE="
            f"{mode}): put the cluster's token (`ray get-auth-token` on the head node) in "
            "~/.ray/auth_token or RAY_AUTH_TOKEN, with RAY_AUTH_MODE=token")
    return ClusterError(f"could not join {where}: {_first_line(e)}")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _init(ray, address: str | None) -> None:
    """``ray.init`` with what Ray's native code prints while it retries kept off the terminal
    (and read for the reason when it fails)."""
    import contextlib
    import sys
    import tempfile

    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                          "logging_level": "ERROR"}
    # no address: a Ray of this scan's own, as --ray-address promises - never a `ray start`
    # cluster that happens to run on this machine (plain ray.init() would join it)
    kw["address"] = address or "local"
    with tempfile.TemporaryFile() as log:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            ray.init(**kw)
            return
        except Exception as e:  # noqa: BLE001 - whatever Ray raises, the user gets one line
            failure = e
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        raise _join_failure(failure, address, log.read().decode("utf-8", "replace")) from None


class ScanActor:
    """One per actor slot: the model is loaded once, then each batch of paths -> rows."""

    def __init__(self, options: dict[str, Any], device: str) -> None:
        opts = ScanOptions(**options)
        set_threads(opts.threads)  # an entry point: the actor's process is its own
        self.core = build_core(opts, device)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        paths = [os.fsdecode(bytes(p)) for p in batch["path"]]
        rows = self.core(paths)
        return {"row": np.array([json.dumps(r.to_dict(), ensure_ascii=True) for r in rows],
                                dtype=object)}


def scan_ray(opts: ScanOptions, paths: Iterable[str], *, address: str | None = None,
             actors: int | None = None, gpus_per_actor: float = 0.0,
             cpus_per_actor: float = 1.0) -> Iterator[list[Row]]:
    """Rows per Ray batch, one per path."""
    ray = import_ray()
    if not ray.is_initialized():
        if address:
            check_reachable(address)
        _init(ray, address)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    import logging

    logging.getLogger("ray.data").setLevel(logging.ERROR)
    if actors is None:
        res = ray.cluster_resources()
        if gpus_per_actor > 0:
            actors = max(1, int(res.get("GPU", 0) // gpus_per_actor))
        else:
            actors = max(1, int(res.get("CPU", 1) // max(cpus_per_actor, 1)))
    device = "cuda:0" if gpus_per_actor > 0 else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES
    # Inside an actor: one supervised decode process (Ray provides the parallelism; the
    # process keeps a file that crashes or hangs a decoder from taking the actor down).
    options = dataclasses.asdict(dataclasses.replace(
        opts, device=device, workers=1, threads=max(1, int(cpus_per_actor)), engine="local"))
    try:
        yield from _batches(ray, opts, paths, options, device, actors, gpus_per_actor,
                            cpus_per_actor)
    except ray.exceptions.RayError as e:
        raise ClusterError(f"the Ray cluster failed during the scan ({type(e).__name__}: "
                           f"{_first_line(e)}); the rows written so far are kept: run the "
                           "same scan with --resume") from None


def _batches(ray, opts: ScanOptions, paths: Iterable[str], options: dict[str, Any],
             device: str, actors: int, gpus_per_actor: float,
             cpus_per_actor: float) -> Iterator[list[Row]]:
    todo = iter(paths)
    while chunk := list(itertools.islice(todo, CHUNK)):
        ds = ray.data.from_items([{"path": os.fsencode(p)} for p in chunk])
        ds = ds.map_batches(
            ScanActor, fn_constructor_kwargs={"options": options, "device": device},
            batch_size=opts.batch_size, compute=ray.data.ActorPoolStrategy(size=actors),
            num_gpus=gpus_per_actor or None,
            num_cpus=cpus_per_actor, batch_format="numpy",
        )
        for batch in ds.iter_batches(batch_size=opts.batch_size, batch_format="numpy"):
            yield [Row(**json.loads(s)) for s in batch["row"]]
