"""A fast exposition formatter for the families this exporter produces.

``prometheus_client``'s encoders check every character of every label name and
value on every scrape: at 1,000 series that is most of a scrape's cost. Our metric
and label names are fixed, valid, legacy-charset names, so this formatter checks
each name once, escapes each distinct label value once, and writes the lines. Its
output is byte-identical to the library's for the default escapings (a test holds
both formats equal); anything it does not handle (timestamps, exemplars, native
histograms, non-legacy names, other escapings) falls back to the library.

The line primitives (:func:`escape_label_value`, :func:`help_line`, :func:`type_line`,
:func:`label_set`, :func:`sample_line`) are the one place label escaping and line
layout are written; the backfill's OpenMetrics file and the tests' hand-made
expositions are written with them too, so every exposition this project writes
escapes and lays out its lines the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

from prometheus_client import utils as _utils
from prometheus_client.exposition import generate_latest as text_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as om

_library_float_to_go: Callable[[float], str] = _utils.floatToGoString  # untyped there


def _float_to_go(value: float) -> str:
    """The library's float formatting, without its checks for the common case.

    Finite values below a million print as ``repr`` does; larger ones, infinities and
    NaN get the library's Go-style treatment.
    """
    if -1e300 < value < 1e6:
        return repr(float(value))
    return _library_float_to_go(value)


_LEGACY_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_SAFE_ESCAPINGS = (om.UNDERSCORES, om.ALLOWUTF8)  # identical output for legacy names
_TEXT_TYPES = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "summary": "summary",
    "unknown": "untyped",
}


EOF_LINE = "# EOF\n"


def escape_label_value(value: str) -> str:
    """A label value as it goes between double quotes: backslash, newline and double
    quote escaped, as both the text format and OpenMetrics require."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def help_line(name: str, text: str, *, openmetrics: bool) -> str:
    """``# HELP name text``: backslash and newline escaped, double quotes too in
    OpenMetrics (the text format leaves them as they are)."""
    text = text.replace("\\", r"\\").replace("\n", r"\n")
    if openmetrics:
        text = text.replace('"', r"\"")
    return f"# HELP {name} {text}\n"


def type_line(name: str, kind: str) -> str:
    """``# TYPE name kind``."""
    return f"# TYPE {name} {kind}\n"


def label_set(
    labels: Mapping[str, str],
    escape: Callable[[str], str] = escape_label_value,
    order: Iterable[str] | None = None,
) -> str:
    """``{a="x",b="y"}`` with the labels in ``order`` (default: as ``labels`` holds
    them), or ``""`` for none.

    ``escape`` lets a caller that sees the same values again and again escape each
    once (see ``Names.value``).
    """
    if not labels:
        return ""
    parts = []  # a loop, not a comprehension: this runs for every sample of a scrape
    for name in labels if order is None else order:
        parts.append(f'{name}="{escape(labels[name])}"')
    return f"{{{','.join(parts)}}}"


def sample_line(name: str, labels: str, value: str, timestamp: int | None = None) -> str:
    """One sample line: ``labels`` from :func:`label_set`, ``value`` already formatted
    (the formats allow several spellings of a number), an optional timestamp."""
    if timestamp is None:
        return f"{name}{labels} {value}\n"
    return f"{name}{labels} {value} {timestamp}\n"


class UnsupportedError(Exception):
    """The families need something only the library's encoder does."""


def fast_format(encoder: Callable[..., bytes]) -> str | None:
    """``"text"`` or ``"openmetrics"`` when this formatter can stand in for ``encoder``."""
    if encoder is text_encoder:
        return "text"
    if isinstance(encoder, partial):
        escaping = encoder.keywords.get("escaping", om.UNDERSCORES)
        if escaping not in _SAFE_ESCAPINGS:
            return None
        if encoder.func is text_encoder:
            return "text"
        if encoder.func is om.generate_latest and encoder.keywords.get("version") == "1.0.0":
            return "openmetrics"
    return None


class Names:
    """Names checked once, label values escaped once: for one rendering, or for as
    long as a cache of rendered chunks keeps them (bounded by :meth:`trim`)."""

    def __init__(self) -> None:
        self.valid: set[str] = set()
        self.escaped: dict[str, str] = {}

    def check(self, name: str, pattern: re.Pattern[str]) -> None:
        if name not in self.valid:
            if not pattern.fullmatch(name):
                raise UnsupportedError(name)
            self.valid.add(name)

    def trim(self, most: int) -> None:
        """Forget the escaped values once more than ``most`` are held."""
        if len(self.escaped) > most:
            self.escaped.clear()

    def value(self, value: str) -> str:
        escaped = self.escaped.get(value)
        if escaped is None:
            escaped = escape_label_value(value)
            self.escaped[value] = escaped
        return escaped


def render(families: Iterable[Metric], openmetrics: bool) -> bytes:
    """The exposition of ``families`` in text 0.0.4 or OpenMetrics 1.0.0 format."""
    names = Names()
    out: list[str] = []
    for metric in families:
        out.append(family_header(metric, openmetrics, names))
        out.append(family_samples(metric, openmetrics, names))
    if openmetrics:
        out.append(EOF_LINE)
    return "".join(out).encode("utf-8")


def family_header(metric: Metric, openmetrics: bool, names: Names) -> str:
    """The ``# HELP`` and ``# TYPE`` (and ``# UNIT``) lines of one family."""
    names.check(metric.name, _LEGACY_METRIC)
    if openmetrics:
        head = help_line(metric.name, metric.documentation, openmetrics=True)
        head += type_line(metric.name, metric.type)
        if metric.unit:
            head += f"# UNIT {metric.name} {metric.unit}\n"
        return head
    if metric.type not in _TEXT_TYPES:
        raise UnsupportedError(metric.type)
    shown = metric.name + "_total" if metric.type == "counter" else metric.name
    return help_line(shown, metric.documentation, openmetrics=False) + type_line(
        shown, _TEXT_TYPES[metric.type]
    )


def family_samples(metric: Metric, openmetrics: bool, names: Names) -> str:
    """The sample lines of one family (those of one workspace, for a chunk)."""
    out: list[str] = []
    for sample in metric.samples:
        _check_sample(metric, sample, names, openmetrics)
        labels = sample.labels
        keys = sorted(labels)
        if not names.valid.issuperset(keys):
            for key in keys:
                names.check(key, _LEGACY_LABEL)
        text = label_set(labels, names.value, keys)
        out.append(sample_line(sample.name, text, _float_to_go(sample.value)))
    return "".join(out)


def _check_sample(metric: Metric, sample: Any, names: Names, openmetrics: bool) -> None:
    if sample.timestamp is not None or sample.exemplar or sample.native_histogram:
        raise UnsupportedError(sample.name)
    if not openmetrics and sample.name in (
        metric.name + "_created",
        metric.name + "_gsum",
        metric.name + "_gcount",
    ):
        raise UnsupportedError(sample.name)  # the text format moves these to extra families
    names.check(sample.name, _LEGACY_METRIC)
