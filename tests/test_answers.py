"""What the client accepts from an answer: its size, its encoding and its numbers.

Answers come from httpx mock transports here, byte for byte as a server could send
them; the real process against a hostile server on loopback is in test_hostile.py.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import Any

import httpx
import pytest

from exporter.api.body import ERROR_BODY_BYTES
from exporter.api.charstats import parse_character_stats
from exporter.api.client import DEFAULT_MAX_RESPONSE_BYTES, ElevenLabsClient
from exporter.api.decode import CHUNK, AnswerDecoder, dumps, loads
from exporter.api.errors import ApiError
from exporter.api.parse import MAX_VALUE, UsageRow, parse_subscription, parse_usage

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
BASE = "https://api.example.test"
COLUMNS = ["timestamp", "product_type", "credits_used"]


class Observed:
    """Collects what the client reports about each request."""

    def __init__(self) -> None:
        self.codes: list[str] = []

    def observe_request(self, workspace: str, endpoint: str, code: str, seconds: float) -> None:
        self.codes.append(code)


def client_for(
    handler: Callable[[httpx.Request], Any],
    decoder: AnswerDecoder | None = None,
    observed: Observed | None = None,
    **settings: Any,
) -> tuple[ElevenLabsClient, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = ElevenLabsClient(
        workspace="w",
        base_url=BASE,
        api_key=lambda: "k",
        http=http,
        telemetry=observed,
        decoder=decoder,
        **settings,
    )
    return client, http


def usage_body(rows: list[list[Any]]) -> bytes:
    return json.dumps({"columns": COLUMNS, "rows": rows}).encode()


async def read_usage(handler: Callable[[httpx.Request], Any], **settings: Any) -> list[UsageRow]:
    client, http = client_for(handler, **settings)
    async with http:
        return await client.usage(T0, T0 + 600, 60)


async def usage_error(handler: Callable[[httpx.Request], Any], **settings: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await read_usage(handler, **settings)
    return caught.value


class Stream(httpx.AsyncByteStream):
    """A body sent in chunks, counting how many were read."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.read += 1
            yield chunk


# The cap on an answer's size ------------------------------------------------------------


async def test_an_answer_announcing_more_than_the_cap_is_refused_unread() -> None:
    """A Content-Length beyond max_response_bytes is refused before reading any of the
    body: bad_response, counted under the answer's status."""
    stream = Stream([b"x" * 1024] * 100)
    observed = Observed()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-length": str(100 * 1024)}, stream=stream)

    err = await usage_error(handler, max_response_bytes=64 * 1024, observed=observed)
    assert err.reason == "bad_response"
    assert "larger than 65536 bytes" in str(err)
    assert stream.read == 0
    assert observed.codes == ["200"]


async def test_an_unannounced_answer_is_read_only_up_to_the_cap() -> None:
    """Without a Content-Length the body is read chunk by chunk and refused as soon as it
    passes the cap: the rest is never read."""
    stream = Stream([b"[" + b" " * 1023] + [b" " * 1024] * 999)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=stream)

    err = await usage_error(handler, max_response_bytes=64 * 1024)
    assert err.reason == "bad_response"
    assert 64 <= stream.read <= 66


async def test_an_answer_of_exactly_the_cap_is_read() -> None:
    """The cap is inclusive: an answer of max_response_bytes bytes is accepted."""
    body = usage_body([["2026-01-01T00:01:00Z", "tts", "1"]])
    padded = body[:-1] + b" " * (64 * 1024 - len(body)) + b"}"
    assert len(padded) == 64 * 1024
    rows = await read_usage(
        lambda request: httpx.Response(200, stream=Stream([padded[:1000], padded[1000:]])),
        max_response_bytes=64 * 1024,
    )
    assert rows == [UsageRow(T0 + 60, ("tts",), 1.0)]


async def test_a_gzip_bomb_is_inflated_only_up_to_the_cap() -> None:
    """A small gzip body that inflates to 200 MiB is refused once the inflated bytes pass
    the cap, without ever inflating the rest (httpx would inflate each chunk whole)."""
    bomb = gzip.compress(b" " * (200 * 1024 * 1024), 9)
    assert len(bomb) < 1024 * 1024
    stream = Stream([bomb[i : i + 65536] for i in range(0, len(bomb), 65536)])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-encoding": "gzip"}, stream=stream)

    err = await usage_error(handler)
    assert err.reason == "bad_response"
    assert f"larger than {DEFAULT_MAX_RESPONSE_BYTES} bytes" in str(err)
    assert stream.read <= 2


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compressed_answers_are_read(encoding: str) -> None:
    """gzip and (zlib-wrapped) deflate answers, the encodings the client asks for, read
    like plain ones."""
    body = usage_body([["2026-01-01T00:01:00Z", "tts", "2.5"]])
    packed = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["accept-encoding"])
        return httpx.Response(200, headers={"content-encoding": encoding}, stream=Stream([packed]))

    assert await read_usage(handler) == [UsageRow(T0 + 60, ("tts",), 2.5)]
    assert seen == ["gzip, deflate"]


@pytest.mark.parametrize(
    ("headers", "body"),
    [({"content-encoding": "br"}, b"\x1b\x00"), ({"content-encoding": "gzip"}, b"not gzip")],
    ids=["an encoding not asked for", "gzip that does not inflate"],
)
async def test_unreadable_encodings_are_bad_responses(headers: dict[str, str], body: bytes) -> None:
    """A body in an encoding the client did not ask for, or that does not inflate, is
    ``bad_response``."""
    err = await usage_error(
        lambda request: httpx.Response(200, headers=headers, stream=Stream([body]))
    )
    assert err.reason == "bad_response"


async def test_an_error_answer_is_read_only_for_its_first_64_kib() -> None:
    """A 503 with a huge body is classified by its status from the first 64 KiB; the rest
    is never read."""
    stream = Stream([b"<html>" + b"x" * 65530] + [b"x" * 65536] * 1000)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, stream=stream)

    err = await usage_error(handler, retry=_no_retries())
    assert err.reason == "server_error"
    assert stream.read <= ERROR_BODY_BYTES // 65536 + 1


def _no_retries() -> Any:
    from exporter.api.backoff import RetryPolicy

    return RetryPolicy(max_retries=0)


# Parsing large answers off the serving threads -----------------------------------------


def worker_pid(answer: Any) -> int:
    """A parse that says where it ran."""
    return os.getpid()


async def test_a_large_answer_is_parsed_in_another_process() -> None:
    """An answer above inline_bytes is parsed in the worker process; small ones in place."""
    decoder = AnswerDecoder(inline_bytes=1024)
    try:
        small = await decoder.decode(b"[]", worker_pid, "usage", 200)
        large = await decoder.decode(b"[" + b" " * 2048 + b"]", worker_pid, "usage", 200)
    finally:
        decoder.close()
    assert small == os.getpid()
    assert large != os.getpid()


async def test_the_worker_gives_the_same_rows_and_the_same_errors() -> None:
    """A large usage answer parsed in the worker gives exactly the rows parsed in place,
    and a bad one the same bad_response."""
    rows = [[f"2026-01-01T00:0{m}:00Z", f"p{n}", "1.5"] for m in range(5) for n in range(3000)]
    body = usage_body(rows)
    decoder = AnswerDecoder(inline_bytes=1024)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    try:
        offloaded = await read_usage(handler, decoder=decoder)
        broken = await usage_error(
            lambda request: httpx.Response(200, content=body[:-100]), decoder=decoder
        )
        absurd = await usage_error(
            lambda request: httpx.Response(200, content=usage_body([[T0, "p", "1e308"]])),
            decoder=AnswerDecoder(inline_bytes=10),
        )
    finally:
        decoder.close()
    here = parse_usage(json.loads(body), ("product_type",), start=T0, end=T0 + 600, interval=60)
    assert offloaded == here.rows
    assert len(offloaded) == 15000
    assert (broken.reason, broken.status) == ("bad_response", 200)
    assert "not JSON" in str(broken)
    assert absurd.reason == "bad_response"
    assert "plausible" in str(absurd)


class NoProcesses(Executor):
    """Where no process can be started."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        raise OSError("cannot start a process")


class Starved(AnswerDecoder):
    def _executor(self) -> Executor | None:
        return NoProcesses() if self._offload else None


async def test_without_a_worker_large_answers_are_parsed_in_place() -> None:
    """If no worker process can be started, large answers are parsed in place rather
    than refused, and no further start is attempted."""
    decoder = Starved(inline_bytes=10)
    assert await decoder.decode(b"[" + b" " * 100 + b"]", worker_pid, "usage", 200) == os.getpid()
    assert decoder._executor() is None


def test_results_come_back_in_pieces_no_larger_than_chunk() -> None:
    """Long lists and dicts travel as separately pickled pieces and come back equal."""
    value = {
        "rows": [UsageRow(T0 + i, (str(i),), float(i)) for i in range(CHUNK * 5 + 3)],
        "names": {str(i): i for i in range(CHUNK * 2 + 1)},
        "nested": [[i] * (CHUNK + 1) for i in range(3)],
    }
    assert loads(dumps(value)) == value


# Plausible values only ----------------------------------------------------------------


def usage(rows: list[list[Any]]) -> list[UsageRow]:
    body = {"columns": COLUMNS, "rows": rows}
    return parse_usage(body, ("product_type",), start=T0, end=T0 + 600, interval=60).rows


@pytest.mark.parametrize(
    "rows",
    [
        [[T0, "a", "1e308"], [T0 + 60, "a", "1e308"]],
        [[T0, "a", "-0.5"]],
        [[T0, "a", -1]],
        [[T0, "a", "1000000000001"]],
        [[T0, "a", 1e300]],
        [[T0, "a", "6e11"], [T0 + 30, "a", "6e11"]],  # one bucket: the sum is beyond
        [[T0, "a", "1"], [T0 + 60, "b", "inf"]],
    ],
    ids=["1e308 twice", "negative string", "negative", "beyond 1e12", "1e300", "sum", "inf"],
)
def test_an_implausible_value_rejects_the_whole_answer(rows: list[list[Any]]) -> None:
    """Not finite, below 0, or beyond 1e12 in one bucket: the whole answer is
    bad_response, so a poll applies all or nothing."""
    with pytest.raises(ApiError) as caught:
        usage(rows)
    assert caught.value.reason == "bad_response"


def test_the_bound_itself_and_zero_are_accepted() -> None:
    """0, the smallest positive float and exactly 1e12 are plausible."""
    rows = usage([[T0, "a", 0], [T0 + 60, "a", 5e-324], [T0 + 120, "a", MAX_VALUE]])
    assert [r.credits for r in rows] == [0.0, 5e-324, MAX_VALUE]


@pytest.mark.parametrize("value", [-1, "1e13", float("nan")])
def test_character_stats_and_subscription_values_are_bounded_too(value: Any) -> None:
    """A character-stats value or the subscription's credit count outside 0..1e12 is
    bad_response as well."""
    with pytest.raises(ApiError):
        parse_character_stats({"time": [T0 * 1000], "usage": {"All": [value]}})
    with pytest.raises(ApiError):
        parse_subscription({"character_count": value, "character_limit": 10})


def frames(error: BaseException) -> list[str]:
    """The names of the functions whose frames the error (and its context) keeps."""
    names = []
    seen: BaseException | None = error
    while seen is not None:
        tb = seen.__traceback__
        while tb is not None:
            names.append(tb.tb_frame.f_code.co_name)
            tb = tb.tb_next
        seen = seen.__context__
    return names


async def test_a_refused_answer_is_not_kept_alive_by_its_error() -> None:
    """The client keeps its last error (and the poll loop too, until the next poll): it
    holds no frame that held the refused answer's bytes, nor the parser's."""
    stream = Stream([b"[" + b" " * 65535] * 400)
    client, http = client_for(lambda request: httpx.Response(200, stream=stream))
    async with http:
        with pytest.raises(ApiError) as caught:
            await client.usage(T0, T0 + 600, 60)
    assert client.last_error is caught.value
    assert not {"read_capped", "decode_now", "_exchange"} & set(frames(caught.value))


async def test_a_redirect_is_not_followed_so_the_key_never_reaches_another_host() -> None:
    """A 302 to another host ends the request (``client_error``); the key is sent once,
    to the configured host only."""
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return httpx.Response(302, headers={"location": "https://elsewhere.test/steal"})

    err = await usage_error(handler)
    assert err.reason == "client_error"
    assert hosts == ["api.example.test"]
