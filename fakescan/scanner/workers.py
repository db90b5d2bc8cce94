"""Decode worker processes that no single file can take down.

``WorkerPool`` runs a per-file function (``fn(path, ctx)``, at the ``guard.guarded``
boundary) in worker processes, one file after another. Each worker sends its outcomes back in
chunks (at the end of a batch, or every ``FLUSH_S`` seconds): one message per file would cost
the scan process more time than decoding does on a fast GPU node. Which file a worker is on,
and since when, it writes to memory shared with the scan process before it starts the file,
so a death or a hang is still charged to the right file. A manager thread in the scan
process drains the workers (so they never wait for the consumer) and watches them:

- a worker that dies (a segfault in a C decoder, the OOM killer, ``os._exit``) is replaced;
  the file it was working on is tried once more in a fresh worker and, if that dies too, gets
  a ``decoder_crashed`` row; the rest of its batch goes on in the new worker (with the files
  it had done but not yet sent, which are done again);
- a file that takes longer than ``timeout`` seconds gets a ``timeout`` row: its worker is
  killed and replaced, the rest of its batch goes on;
- each worker's address space is capped (``RLIMIT_AS``), so a file that needs too much
  memory raises ``MemoryError`` there (a ``too_large`` row) before the OOM killer has to
  pick a process - maybe the scan itself;
- each worker's standard error (where libtiff, libpng ... print) goes to a private file that
  is read back after every file into that file's ``warning``, never to the terminal.

Workers are forked (Pillow and numpy; for a face model, also the detector's small torch
nets, single-threaded). The first ones are started when the pool is made, before the runtime
starts its thread pools.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any

from fakescan.config import DECODE_TIMEOUT_S
from fakescan.scanner.guard import ScanError, StderrTap, guarded

FLUSH_S = 0.2  # a worker sends what it has at least this often (and at the end of a batch)
IDLE = -1.0  # progress slot 0 while a worker is between batches


@dataclass
class Outcome:
    """What handling one file gave: a value, or the error that stands for it."""

    value: Any = None
    error: ScanError | None = None
    warning: str = ""


def run_here(fn: Callable[[str, Any], Any], ctx: Any, paths: list[str]) -> list[Outcome]:
    """The in-process path (no worker): same boundary, but no crash, hang or memory guard."""
    return [Outcome(*guarded(fn, p, ctx)) for p in paths]


def die_with_parent() -> None:
    """Linux: this process gets SIGKILL when the thread that forked it ends (even by -9)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _cap_memory(budget: int | None) -> None:
    """Let this process map at most ``budget`` bytes more than it has now."""
    if not budget:
        return
    try:
        import resource

        with open("/proc/self/statm") as f:
            now = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = now + budget
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (OSError, ValueError, ImportError):
        pass


def _worker_main(conn, memory_budget: int | None, progress) -> None:
    """Handle batches from ``conn``; ``progress`` (shared): [index of the file being handled
    (``IDLE`` between batches), when it was started (``time.monotonic``)]."""
    import faulthandler

    faulthandler.disable()  # a crash here is reported as the file's row, not as a dump
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the scan's to handle
    import sys

    if "torch" in sys.modules:  # a face model's detector runs torch here: one thread, so no
        sys.modules["torch"].set_num_threads(1)  # OpenMP pool is entered after the fork
    _cap_memory(memory_budget)
    tap = StderrTap()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        task_id, fn, ctx, items = msg
        done: list[tuple] = []
        sent = time.monotonic()
        for idx, path in items:
            progress[1] = time.monotonic()  # the time first: the manager reads index, time
            progress[0] = idx
            done.append((idx, *guarded(fn, path, ctx, tap)))
            if time.monotonic() - sent > FLUSH_S:
                conn.send((task_id, done))
                done, sent = [], time.monotonic()
        conn.send((task_id, done))
        progress[0] = IDLE


@dataclass
class _Task:
    fn: Callable[[str, Any], Any]
    ctx: Any
    paths: list[str]
    future: Future
    results: list[Outcome | None]
    retried: set[int] = field(default_factory=set)
    left: int = 0

    def settle(self, idx: int, outcome: Outcome) -> None:
        if self.results[idx] is None:
            self.left -= 1
        self.results[idx] = outcome
        if self.left == 0 and not self.future.done():
            self.future.set_result(self.results)


@dataclass
class _Worker:
    proc: Any
    conn: Any
    task: _Task | None = None
    task_id: int = -1
    progress: Any = None  # shared with the worker: [file index or IDLE, when it began it]
    todo: deque = field(default_factory=deque)  # indices sent, in the order it works on them

    def current(self) -> tuple[int | None, float]:
        """The index of the file the worker is on (``None`` between files of no batch) and
        when it began it."""
        idx = self.progress[0]
        return (None if idx == IDLE else int(idx)), self.progress[1]


class WorkerPool:
    """``workers`` supervised decode processes; see the module docstring."""

    def __init__(self, workers: int, *, timeout: float | None = DECODE_TIMEOUT_S,
                 memory_budget: int | None = None) -> None:
        from PIL import Image

        Image.init()  # every Pillow plugin imported once, before any fork
        self.timeout = timeout if timeout and timeout > 0 else None
        self.memory_budget = memory_budget
        self.crashes = 0  # workers replaced after dying
        self.timeouts = 0  # workers killed over a file that took too long
        self._ctx = mp.get_context("fork")
        self._ids = itertools.count()
        self._tasks: dict[int, _Task] = {}
        self._pending: deque[int] = deque()
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._stop = False
        self._workers = [self._spawn() for _ in range(max(1, workers))]
        self._thread = threading.Thread(target=self._manage, name="fakescan-decode-pool",
                                        daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the consumer's side
    def submit(self, fn: Callable[[str, Any], Any], ctx: Any, paths: list[str]) -> Future:
        """A future of ``list[Outcome]``, one per path, in order."""
        fut: Future = Future()
        if not paths:
            fut.set_result([])
            return fut
        if self._stop:
            raise RuntimeError("the decode pool is closed")
        self._inbox.put((fn, ctx, list(paths), fut))
        self._wake()
        return fut

    def map(self, fn: Callable[[str, Any], Any], ctx: Any, batches: Iterable[list[str]],
            depth: int) -> Iterator[tuple[list[str], list[Outcome]]]:
        """``(batch, outcomes)`` in input order, at most ``depth`` batches in flight."""
        pending: deque[tuple[list[str], Future]] = deque()
        it = iter(batches)
        try:
            while True:
                while len(pending) < depth and (b := next(it, None)) is not None:
                    pending.append((b, self.submit(fn, ctx, b)))
                if not pending:
                    return
                b, fut = pending.popleft()
                yield b, fut.result()
        finally:
            for _, fut in pending:
                fut.cancel()

    def close(self) -> None:
        if self._stop:
            return
        self._stop = True
        self._wake()
        self._thread.join()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    # ------------------------------------------------------------------ the manager thread
    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        progress = self._ctx.RawArray("d", [IDLE, time.monotonic()])
        p = self._ctx.Process(target=_worker_main, args=(child, self.memory_budget, progress),
                              daemon=True, name="fakescan-decode")
        p.start()
        child.close()
        return _Worker(p, parent, progress=progress)

    def _manage(self) -> None:
        try:
            while not self._stop:
                self._take_inbox()
                self._assign()
                objs: list[Any] = [self._wake_r]
                for w in self._workers:
                    objs += [w.conn, w.proc.sentinel]
                for ready in wait(objs, self._next_timeout()):
                    if ready == self._wake_r:
                        with contextlib.suppress(BlockingIOError):
                            os.read(self._wake_r, 4096)
                for w in list(self._workers):
                    self._drain(w)
                self._expire()
        except BaseException as e:  # noqa: BLE001 - a bug here must not hang the consumer
            self._fail_all(e)
        finally:
            self._shutdown()

    def _take_inbox(self) -> None:
        while True:
            try:
                fn, ctx, paths, fut = self._inbox.get_nowait()
            except queue.Empty:
                return
            tid = next(self._ids)
            self._tasks[tid] = _Task(fn, ctx, paths, fut, [None] * len(paths), left=len(paths))
            self._pending.append(tid)

    def _assign(self) -> None:
        for w in self._workers:
            if w.task is not None:
                continue
            while self._pending:
                tid = self._pending.popleft()
                task = self._tasks[tid]
                if not task.future.set_running_or_notify_cancel():
                    del self._tasks[tid]  # cancelled before it started: drop it
                    continue
                self._send(w, tid, task, list(range(len(task.paths))))
                break

    def _send(self, w: _Worker, tid: int, task: _Task, idxs: list[int]) -> None:
        w.task, w.task_id, w.todo = task, tid, deque(idxs)
        with contextlib.suppress(OSError):  # it died just now: _drain will notice and resend
            w.conn.send((tid, task.fn, task.ctx, [(i, task.paths[i]) for i in idxs]))

    def _next_timeout(self) -> float | None:
        if self.timeout is None:
            return None
        now = time.monotonic()  # a worker that has not begun its batch yet: from now
        busy = [since if idx is not None else now
                for idx, since in (w.current() for w in self._workers if w.todo)]
        if not busy:
            return None
        return max(0.0, min(busy) + self.timeout - time.monotonic()) + 0.01

    def _drain(self, w: _Worker) -> None:
        """Take every outcome ``w`` has sent; replace it if it has died."""
        try:
            self._receive(w)
            dead = False
        except (EOFError, OSError):
            dead = True
        if dead or not w.proc.is_alive():
            self._replace(w, why="crash")

    def _receive(self, w: _Worker) -> None:
        """Settle every outcome ``w`` has sent so far."""
        while w.conn.poll():
            tid, done = w.conn.recv()
            for idx, value, error, warning in done:
                self._settle(w, tid, idx, Outcome(value, error, warning))

    def _settle(self, w: _Worker, tid: int, idx: int, outcome: Outcome) -> None:
        if w.todo and w.todo[0] == idx:
            w.todo.popleft()
        task = self._tasks.get(tid)
        if task is not None:
            task.settle(idx, outcome)
            if task.left == 0:
                self._tasks.pop(tid, None)
        if not w.todo:
            w.task, w.task_id = None, -1

    def _expire(self) -> None:
        if self.timeout is None:
            return
        now = time.monotonic()
        for w in list(self._workers):
            idx, since = w.current()
            if w.todo and idx is not None and now - since > self.timeout:
                self._replace(w, why="timeout")

    def _replace(self, w: _Worker, why: str) -> None:
        """Put a fresh worker in ``w``'s place; settle the file it was on; hand on the rest
        (the files it had done but not sent included)."""
        current, _ = w.current()
        if w.proc.is_alive():
            w.proc.kill()
        w.proc.join()
        with contextlib.suppress(EOFError, OSError):  # outcomes it sent before it ended
            self._receive(w)
        with contextlib.suppress(OSError):
            w.conn.close()
        fresh = self._spawn()
        self._workers[self._workers.index(w)] = fresh
        task, tid, todo = w.task, w.task_id, w.todo
        if task is None or not todo:
            return
        # the file it was on; todo's earlier ones were done but their outcomes lost with it
        if current is not None and current in todo:
            idx = current
            todo = deque([idx, *(i for i in todo if i != idx)])
        elif why == "timeout":  # it was past its last file (sending): nobody to charge
            self._send(fresh, tid, task, list(todo))
            return
        else:
            idx = todo[0]
        if why == "timeout":
            self.timeouts += 1
            todo.popleft()
            task.settle(idx, Outcome(error=ScanError(
                "timeout", f"reading and decoding took longer than {self.timeout:g} s; the "
                "decoder was stopped")))
        else:
            self.crashes += 1
            code = w.proc.exitcode
            how = (f"signal {signal.Signals(-code).name}" if code is not None and code < 0
                   and -code in signal.Signals._value2member_map_ else f"exit status {code}")
            if idx in task.retried:
                todo.popleft()
                task.settle(idx, Outcome(error=ScanError(
                    "decoder_crashed", f"the decoder process died on this file ({how}), "
                    "twice")))
            else:
                task.retried.add(idx)  # once more, alone in a fresh worker
        if task.left == 0:
            self._tasks.pop(tid, None)
        elif todo:
            self._send(fresh, tid, task, list(todo))

    def _fail_all(self, e: BaseException) -> None:
        for task in self._tasks.values():
            if not task.future.done():
                task.future.set_exception(e)
        while True:
            try:
                *_, fut = self._inbox.get_nowait()
            except queue.Empty:
                break
            if not fut.done():
                fut.set_exception(e)

    def _shutdown(self) -> None:
        self._stop = True
        self._fail_all(RuntimeError("the decode pool was closed"))
        for w in self._workers:
            with contextlib.suppress(OSError, ValueError, BrokenPipeError):
                w.conn.send(None)
        deadline = time.monotonic() + 2
        for w in self._workers:
            w.proc.join(max(0.0, deadline - time.monotonic()))
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join()
            with contextlib.suppress(OSError):
                w.conn.close()
