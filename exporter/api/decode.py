"""Turning an answer's bytes into typed values without holding up the HTTP threads.

The HTTP server answers scrapes from threads of the exporter's own process, and a
thread needs the interpreter lock to run. ``json.loads`` holds that lock for as long
as it parses (about 200 ms for 15 MiB), and a long Python loop over the rows makes
every scrape wait in turn for the lock. So a large answer (above ``inline_bytes``,
256 KiB: about 3 ms of ``json.loads``) is parsed and checked in a worker process,
and only the typed result travels back. Small answers, every poll of a normal
workspace, are parsed in place, where a process round trip would cost more.

The result comes back pickled with every long list and dict cut into pieces of
``CHUNK`` items, each unpickled separately: no single step of rebuilding it holds the
lock for more than about a millisecond, however many rows the answer had.

The worker process is started on the first large answer and kept (one process,
``spawn``ed, so it shares no threads or locks with the exporter). Where no worker can
be started at all (no ``/dev/shm``, no process limit left), large answers are parsed
in place, as small ones are. A worker that dies while parsing (killed for its memory)
fails that answer as ``bad_response``; the next large answer starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import pickle
import signal
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from io import BytesIO
from typing import Any, TypeVar

from exporter.api.errors import ApiError

T = TypeVar("T")
INLINE_BYTES = 256 * 1024
CHUNK = 512  # items per separately pickled piece of a long list or dict
_LIST, _DICT = 0, 1


def decode_now(body: bytes, parse: Callable[[Any], T], what: str, status: int) -> T:
    """Parse ``body`` as JSON and hand it to ``parse``, here and now."""
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        snippet = " ".join(body[:80].decode("utf-8", "replace").split())
        raise ApiError(
            "bad_response", f"{what}: answer is not JSON: {snippet!r}", status=status
        ) from None
    return parse(answer)


class _Failure:
    """An ApiError as it crosses back from the worker (exceptions pickle poorly)."""

    def __init__(self, error: ApiError) -> None:
        self.reason, self.message, self.status = error.reason, str(error), error.status


class _Splitter(pickle.Pickler):
    def persistent_id(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is list and len(obj) > CHUNK:
            return (_LIST, [dumps(obj[i : i + CHUNK]) for i in range(0, len(obj), CHUNK)])
        if kind is dict and len(obj) > CHUNK:
            items = list(obj.items())
            return (_DICT, [dumps(items[i : i + CHUNK]) for i in range(0, len(items), CHUNK)])
        return None


class _Joiner(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> Any:
        kind, pieces = pid
        if kind == _LIST:
            out: list[Any] = []
            for piece in pieces:
                out += loads(piece)
            return out
        joined: dict[Any, Any] = {}
        for piece in pieces:
            joined.update(loads(piece))
        return joined


def dumps(obj: Any) -> bytes:
    """``obj`` pickled with long lists and dicts in separately pickled pieces."""
    buffer = BytesIO()
    _Splitter(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


def loads(data: bytes) -> Any:
    """The inverse of :func:`dumps` (only ever given what the worker produced)."""
    return _Joiner(BytesIO(data)).load()


def _work(body: bytes, parse: Callable[[Any], Any], what: str, status: int) -> bytes:
    """In the worker: parse and check, and send back the result or the ApiError."""
    try:
        return dumps(decode_now(body, parse, what, status))
    except ApiError as err:
        return dumps(_Failure(err))


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group; the exporter itself decides when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class AnswerDecoder:
    """Parses answers: small ones in place, large ones in a worker process."""

    def __init__(self, inline_bytes: int = INLINE_BYTES) -> None:
        self.inline_bytes = inline_bytes
        self._pool: Executor | None = None
        self._offload = True  # False once a worker could not be started
        self._worked = False  # True once a worker has answered

    def _executor(self) -> Executor | None:
        if self._pool is None and self._offload:
            try:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_ignore_interrupts,
                )
            except (OSError, ImportError, NotImplementedError):  # no semaphores, /dev/shm
                self._offload = False
        return self._pool

    async def decode(self, body: bytes, parse: Callable[[Any], T], what: str, status: int) -> T:
        """The typed answer, or ApiError (``bad_response``) when it cannot be read.

        ``parse`` must be picklable (a module-level function, or a partial of one): a
        large answer is parsed by it in the worker.
        """
        pool = self._executor() if len(body) > self.inline_bytes else None
        if pool is None:
            return decode_now(body, parse, what, status)
        loop = asyncio.get_running_loop()
        try:
            packed = await loop.run_in_executor(pool, _work, body, parse, what, status)
        except (BrokenProcessPool, OSError) as err:
            self.close()  # the next large answer starts a new worker
            if not self._worked:  # no worker ever ran here: parse in place from now on
                self._offload = False
                return decode_now(body, parse, what, status)
            raise ApiError(
                "bad_response", f"{what}: the parser process failed ({type(err).__name__})"
            ) from None
        self._worked = True
        result = loads(packed)
        if isinstance(result, _Failure):
            raise ApiError(result.reason, result.message, status=result.status)
        return result  # type: ignore[no-any-return]  # what parse returned, in the worker

    def close(self) -> None:
        """Stop the worker, if one runs (a parse under way is abandoned)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                pool.shutdown(wait=False, cancel_futures=True)
