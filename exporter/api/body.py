"""Reading an answer's body incrementally, never past a cap.

httpx would buffer a whole body before handing it over, however large, and decode
gzip in one go (a 64 KiB gzip chunk can inflate to 64 MiB). So the client streams the
raw body and this module inflates it here, asking zlib for no more than the cap
allows: an answer larger than the cap, announced (``Content-Length``) or not, is
refused after reading at most the cap, and the rest is never read. The cap applies
to the decoded body, the size the parser would see, and to the bytes on the wire.
"""

from __future__ import annotations

import zlib

import httpx

# The encodings the client asks for: what it can inflate with a bound.
ACCEPT_ENCODING = "gzip, deflate"
# Error answers (non-2xx) are only read for their code and message: a little is enough,
# and the rest is dropped rather than refused (the status already says what happened).
ERROR_BODY_BYTES = 64 * 1024


class BodyTooLargeError(Exception):
    """The answer is larger than the cap (``size`` is what was announced or read)."""

    def __init__(self, size: int, cap: int) -> None:
        super().__init__(f"answer larger than {cap} bytes ({size} bytes or more)")
        self.size = size
        self.cap = cap


class BodyUnreadableError(Exception):
    """The body uses an encoding the client did not ask for, or does not inflate."""


class _Inflater:
    """Inflates gzip or zlib-wrapped deflate without ever producing more than asked."""

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(32 + zlib.MAX_WBITS)  # a gzip or a zlib header

    def feed(self, data: bytes, room: int) -> bytes:
        """Inflate ``data`` into at most ``room + 1`` bytes: one more than may be kept is
        enough to know that the cap is exceeded (zlib keeps the rest of the input)."""
        try:
            return self._zlib.decompress(data, room + 1)
        except zlib.error as err:
            raise BodyUnreadableError(f"body does not inflate: {err}") from None

    def finish(self, room: int) -> bytes:
        """Whatever zlib still holds once the input has ended."""
        try:
            return self._zlib.flush(room + 1)
        except zlib.error as err:
            raise BodyUnreadableError(f"body does not inflate: {err}") from None


async def read_capped(response: httpx.Response, cap: int, *, truncate: bool = False) -> bytes:
    """The decoded body, or BodyTooLargeError as soon as it is known to exceed ``cap`` bytes.

    With ``truncate`` the first ``cap`` bytes are returned instead, and the rest is not
    read. Encodings other than identity, gzip and deflate raise BodyUnreadableError.
    """
    if response.is_stream_consumed:  # a transport that hands over answers already read
        content = response.content
        if len(content) > cap and not truncate:
            raise BodyTooLargeError(len(content), cap)
        return content[:cap]
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "", "gzip", "x-gzip", "deflate"):
        raise BodyUnreadableError(f"unexpected content-encoding {encoding[:40]!r}")
    declared = response.headers.get("content-length", "").strip()
    if not truncate and declared.isdigit() and int(declared) > cap:
        raise BodyTooLargeError(int(declared), cap)
    inflater = _Inflater() if encoding not in ("identity", "") else None
    body = bytearray()
    wire = 0
    async for chunk in response.aiter_raw():
        wire += len(chunk)
        room = cap - len(body)
        piece = chunk if inflater is None else inflater.feed(chunk, room)
        if len(piece) > room or wire > cap:
            if truncate:
                return bytes(body + piece[:room])
            size = max(wire, len(body) + len(piece))
            body.clear()  # the error's traceback keeps this frame: not its megabytes
            raise BodyTooLargeError(size, cap)
        body += piece
    if inflater is not None:
        room = cap - len(body)
        piece = inflater.finish(room)
        if len(piece) > room and not truncate:
            raise BodyTooLargeError(len(body) + len(piece), cap)
        body += piece[:room]
    return bytes(body)
