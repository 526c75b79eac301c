"""A fast exposition formatter for the families this exporter produces.

``prometheus_client``'s encoders check every character of every label name and
value on every scrape: at 1,000 series that is most of a scrape's cost. Our metric
and label names are fixed, valid, legacy-charset names, so this formatter checks
each name once, escapes each distinct label value once, and writes the lines. Its
output is byte-identical to the library's for the default escapings (a test holds
both formats equal); anything it does not handle (timestamps, exemplars, native
histograms, non-legacy names, other escapings) falls back to the library.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
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


class _Names:
    """Names checked once, label values escaped once, for one rendering."""

    def __init__(self) -> None:
        self.valid: set[str] = set()
        self.escaped: dict[str, str] = {}

    def check(self, name: str, pattern: re.Pattern[str]) -> None:
        if name not in self.valid:
            if not pattern.fullmatch(name):
                raise UnsupportedError(name)
            self.valid.add(name)

    def value(self, value: str) -> str:
        escaped = self.escaped.get(value)
        if escaped is None:
            escaped = value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
            self.escaped[value] = escaped
        return escaped


def render(families: Iterable[Metric], openmetrics: bool) -> bytes:
    """The exposition of ``families`` in text 0.0.4 or OpenMetrics 1.0.0 format."""
    names = _Names()
    out: list[str] = []
    for metric in families:
        names.check(metric.name, _LEGACY_METRIC)
        if openmetrics:
            help_text = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
            out.append(f"# HELP {metric.name} {help_text.replace(chr(34), chr(92) + chr(34))}\n")
            out.append(f"# TYPE {metric.name} {metric.type}\n")
            if metric.unit:
                out.append(f"# UNIT {metric.name} {metric.unit}\n")
        else:
            if metric.type not in _TEXT_TYPES:
                raise UnsupportedError(metric.type)
            shown = metric.name + "_total" if metric.type == "counter" else metric.name
            help_text = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
            out.append(f"# HELP {shown} {help_text}\n# TYPE {shown} {_TEXT_TYPES[metric.type]}\n")
        for sample in metric.samples:
            _check_sample(metric, sample, names, openmetrics)
            labels = sample.labels
            if labels:
                parts = []
                for key in sorted(labels):
                    names.check(key, _LEGACY_LABEL)
                    parts.append(f'{key}="{names.value(labels[key])}"')
                out.append(f"{sample.name}{{{','.join(parts)}}} {_float_to_go(sample.value)}\n")
            else:
                out.append(f"{sample.name} {_float_to_go(sample.value)}\n")
    if openmetrics:
        out.append("# EOF\n")
    return "".join(out).encode("utf-8")


def _check_sample(metric: Metric, sample: Any, names: _Names, openmetrics: bool) -> None:
    if sample.timestamp is not None or sample.exemplar or sample.native_histogram:
        raise UnsupportedError(sample.name)
    if not openmetrics and sample.name in (
        metric.name + "_created",
        metric.name + "_gsum",
        metric.name + "_gcount",
    ):
        raise UnsupportedError(sample.name)  # the text format moves these to extra families
    names.check(sample.name, _LEGACY_METRIC)
