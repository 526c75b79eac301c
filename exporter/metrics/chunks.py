"""The exposition assembled from per-workspace chunks, so a scrape re-renders only what
changed.

Prometheus' formats group samples by family, so one workspace's samples are spread
over every family. Each :class:`~exporter.metrics.families.WorkspaceCollector`
renders each workspace's share of each of its families once per token (a token is
replaced whenever that workspace's data may have changed); a scrape then joins the
family headers and the shares in order, which are the very bytes a full rendering
gives. gzip works the same way: each family's shares are compressed in blocks of a
few workspaces, each block an independent deflate stream ended with a sync flush,
and the gzip body is the blocks in order behind one header, with the CRC of the
plain body: only the blocks holding a changed workspace are compressed again.
"""

from __future__ import annotations

import struct
import weakref
import zlib
from collections.abc import Sequence
from typing import Any

from prometheus_client.registry import Collector

from exporter.metrics.families import WorkspaceCollector
from exporter.metrics.render import EOF_LINE, Names, family_header, family_samples

BLOCK = 16  # workspaces per compressed block of a family
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no mtime
_FINAL_BLOCK = b"\x03\x00"  # an empty final deflate block
_MOST_ESCAPED = 200_000  # label values remembered escaped before starting afresh


def deflate(data: bytes, level: int) -> bytes:
    """``data`` as a raw deflate stream that can be followed by another one: it ends on
    a byte boundary (sync flush) without a final block."""
    if not data:
        return b""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


def gzip_of(segments: Sequence[bytes], plain: bytes) -> bytes:
    """A gzip member holding the concatenated deflate ``segments`` of ``plain``."""
    trailer = struct.pack("<II", zlib.crc32(plain) & 0xFFFFFFFF, len(plain) & 0xFFFFFFFF)
    return b"".join((_GZIP_HEADER, *segments, _FINAL_BLOCK, trailer))


class _Same:
    """Whether tokens are the very objects seen before (held weakly, so a cache never
    keeps a replaced snapshot alive)."""

    __slots__ = ("refs",)

    def __init__(self, tokens: Sequence[object]) -> None:
        self.refs = [weakref.ref(t) for t in tokens]

    def matches(self, tokens: Sequence[object]) -> bool:
        return len(tokens) == len(self.refs) and all(
            ref() is token for ref, token in zip(self.refs, tokens, strict=True)
        )


class ChunkedExposition:
    """Renders the collectors' exposition, re-rendering only changed workspaces."""

    def __init__(self, collectors: Sequence[Collector], gzip_level: int) -> None:
        self._collectors = list(collectors)
        self._level = gzip_level
        self._names = Names()
        self._headers: dict[tuple[int, bool], list[bytes]] = {}
        self._chunks: dict[tuple[int, str, bool], tuple[_Same, list[bytes]]] = {}
        self._blocks: dict[tuple[int, int, int, bool], tuple[_Same, bytes]] = {}
        self._static: dict[bytes, bytes] = {}
        self.renders = 0  # workspace chunks rendered, for tests and the benchmark

    def body(self, openmetrics: bool, compress: bool) -> bytes:
        """The exposition in the chosen format, gzipped when asked."""
        self._names.trim(_MOST_ESCAPED)
        pieces: list[bytes] = []
        segments: list[bytes] = []
        for index, collector in enumerate(self._collectors):
            if isinstance(collector, WorkspaceCollector):
                self._workspace_part(index, collector, openmetrics, compress, pieces, segments)
            else:
                text = "".join(
                    family_header(f, openmetrics, self._names)
                    + family_samples(f, openmetrics, self._names)
                    for f in collector.collect()
                ).encode()
                pieces.append(text)
                if compress:
                    segments.append(deflate(text, self._level))
        if openmetrics:
            pieces.append(EOF_LINE.encode())
            if compress:
                segments.append(self._deflate_static(EOF_LINE.encode()))
        plain = b"".join(pieces)
        return gzip_of(segments, plain) if compress else plain

    def _workspace_part(
        self,
        index: int,
        collector: WorkspaceCollector,
        openmetrics: bool,
        compress: bool,
        pieces: list[bytes],
        segments: list[bytes],
    ) -> None:
        headers = self._header(index, collector, openmetrics)
        tokens = collector.tokens()
        chunks = [self._chunk(index, collector, name, token, openmetrics) for name, token in tokens]
        for family, header in enumerate(headers):
            shares = [chunk[family] for chunk in chunks]
            pieces.append(header)
            pieces.extend(shares)
            if not compress:
                continue
            segments.append(self._deflate_static(header))
            for start in range(0, len(tokens), BLOCK):
                block = [token for _, token in tokens[start : start + BLOCK]]
                key = (index, family, start, openmetrics)
                cached = self._blocks.get(key)
                if cached is None or not cached[0].matches(block):
                    data = deflate(b"".join(shares[start : start + BLOCK]), self._level)
                    cached = self._blocks[key] = (_Same(block), data)
                segments.append(cached[1])

    def _header(self, index: int, collector: WorkspaceCollector, openmetrics: bool) -> list[bytes]:
        key = (index, openmetrics)
        headers = self._headers.get(key)
        if headers is None:
            headers = self._headers[key] = [
                family_header(f, openmetrics, self._names).encode() for f in collector.families()
            ]
        return headers

    def _chunk(
        self,
        index: int,
        collector: WorkspaceCollector,
        workspace: str,
        token: Any,
        openmetrics: bool,
    ) -> list[bytes]:
        key = (index, workspace, openmetrics)
        cached = self._chunks.get(key)
        if cached is not None and cached[0].matches([token]):
            return cached[1]
        families = collector.families()
        collector.fill(workspace, token, families)
        shares = [family_samples(f, openmetrics, self._names).encode() for f in families]
        self._chunks[key] = (_Same([token]), shares)
        self.renders += 1
        return shares

    def _deflate_static(self, data: bytes) -> bytes:
        found = self._static.get(data)
        if found is None:
            found = self._static[data] = deflate(data, self._level)
        return found
