"""The vendor's SDK (PyPI ``elevenlabs``, pinned in pyproject's ``test`` extra) as the
contract our simulator and our client are held to.

The SDK parses answers leniently (``construct_type`` never raises) and its models
accept Python field names as well as the wire's aliases, so the checks here are
stricter than the SDK itself:

- :func:`answer_problems` validates a raw answer with the SDK's response model in
  pydantic's strict JSON mode (required fields present, types exact: no ``"12"`` for
  an int), flags a field sent under its Python name instead of its wire name
  (``service_accounts`` for ``service-accounts``), and flags values of the SDK's open
  enums (``Literal[...] | Any``) that the SDK does not know.
- :func:`table_problems` and :func:`series_problems` add what the SDK's model cannot
  say but its documentation does: parallel column arrays, the value columns by name.
- :func:`request_problems` checks a request against the SDK method's own parameter
  types; the tests also compare it with the request the SDK method itself sends.

:func:`sdk_client` points the SDK at a base URL on loopback and refuses any request
that would leave it.
"""

from __future__ import annotations

import inspect
import ipaddress
import json
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pydantic
from elevenlabs.client import ElevenLabs

# (field, value) pairs allowed although the SDK's open enum does not list the value,
# each with the source that shows the real API sends it.
KNOWN_EXCEPTIONS = {
    # The usage-by-product-over-time docs' example answer gives group columns the unit
    # "" (docs/api-contract.md); the SDK allows any string or null there.
    ("column_units", ""),
}
CURRENCIES = ("usd", "eur", "inr", "pln", "gbp")


class LeftLoopbackError(AssertionError):
    """The SDK tried to reach a host that is not on loopback."""


@dataclass
class Capture:
    """The answers the SDK's HTTP client received, bodies read."""

    responses: list[httpx.Response] = field(default_factory=list)

    @property
    def last(self) -> httpx.Response:
        """The most recent answer."""
        assert self.responses, "the SDK received no answer"
        return self.responses[-1]


def sdk_client(base_url: str, api_key: str, capture: Capture) -> ElevenLabs:
    """The SDK's client on ``base_url`` only: every request must go to a loopback
    address (anything else raises :class:`LeftLoopbackError` before it is sent), and every
    answer is kept in ``capture``."""

    def only_loopback(request: httpx.Request) -> None:
        try:
            loopback = ipaddress.ip_address(request.url.host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise LeftLoopbackError(f"the SDK tried to reach {request.url}")

    def keep(response: httpx.Response) -> None:
        response.read()
        capture.responses.append(response)

    http = httpx.Client(
        timeout=30,
        follow_redirects=False,
        trust_env=False,
        event_hooks={"request": [only_loopback], "response": [keep]},
    )
    return ElevenLabs(base_url=base_url, api_key=api_key, httpx_client=http)


def answer_problems(annotation: Any, raw: bytes) -> list[str]:
    """What keeps a raw answer from being what the SDK's ``annotation`` describes."""
    problems: list[str] = []
    try:
        pydantic.TypeAdapter(annotation).validate_json(raw, strict=True)
    except pydantic.ValidationError as err:
        problems += [
            f"{'.'.join(str(p) for p in e['loc']) or '(answer)'}: {e['msg']}" for e in err.errors()
        ]
    try:
        value = json.loads(raw)
    except ValueError:
        return problems or ["(answer): not JSON"]
    _walk(annotation, value, "", "", problems)
    return problems


def _literals(args: Sequence[Any]) -> list[Any]:
    values: list[Any] = []
    for arg in args:
        if typing.get_origin(arg) is typing.Literal:
            values += list(typing.get_args(arg))
    return values


def _walk(annotation: Any, value: Any, path: str, name: str, problems: list[str]) -> None:
    """Checks pydantic's validation leaves out: wire names and open-enum values."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        _walk(args[0], value, path, name, problems)
        return
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return
        known = _literals(args)
        if typing.Any in args and known:
            if value not in known and (name, value) not in KNOWN_EXCEPTIONS:
                problems.append(f"{path or '(answer)'}: {value!r} is not among the SDK's {known}")
            return
        for arm in args:
            arm_origin = typing.get_origin(arm) or arm
            if isinstance(value, dict) and (
                arm_origin in (dict, Mapping)
                or (isinstance(arm, type) and issubclass(arm, pydantic.BaseModel))
            ):
                _walk(arm, value, path, name, problems)
                return
            if isinstance(value, list) and arm_origin in (list, Sequence):
                _walk(arm, value, path, name, problems)
                return
        return
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        if not isinstance(value, dict):
            return
        for field_name, info in annotation.model_fields.items():
            wire = info.alias or field_name
            if wire != field_name and field_name in value and wire not in value:
                problems.append(
                    f"{path + '.' if path else ''}{field_name}: the API's name is {wire!r}"
                )
            if wire in value:
                where = f"{path}.{wire}" if path else wire
                _walk(info.annotation, value[wire], where, field_name, problems)
        return
    if origin in (list, Sequence) and isinstance(value, list) and args:
        for index, item in enumerate(value):
            _walk(args[0], item, f"{path}.{index}", name, problems)
        return
    if origin in (dict, Mapping) and isinstance(value, dict) and len(args) == 2:
        for key, item in value.items():
            _walk(args[1], item, f"{path}.{key}" if path else str(key), name, problems)


def table_problems(
    raw: bytes,
    group_by: Sequence[str],
    value_columns: Mapping[str, tuple[str, Sequence[str | None]]],
) -> list[str]:
    """The documented shape of a usage table beyond the SDK's model: parallel
    ``columns``/``column_types``/``column_units`` and rows, a ``timestamp`` DateTime
    column, every grouped column, and each value column by name with its type and
    one of its units (``value_columns``: name -> (type, units))."""
    body = json.loads(raw)
    if not isinstance(body, dict):
        return ["(answer): not an object"]
    columns, kinds, units = (body.get(k) or [] for k in ("columns", "column_types", "column_units"))
    problems = []
    if not len(columns) == len(kinds) == len(units):
        problems.append(f"columns, column_types, column_units differ in length: {columns}")
    for number, row in enumerate(body.get("rows") or []):
        if not isinstance(row, list) or len(row) != len(columns):
            problems.append(f"rows.{number}: not {len(columns)} cells")
            break
    wanted = {"timestamp": ("DateTime", ("s",)), **value_columns}
    for name, (kind, allowed) in wanted.items():
        if name not in columns:
            problems.append(f"columns: no {name!r} column among {columns}")
            continue
        index = columns.index(name)
        if index < len(kinds) and kinds[index] != kind:
            problems.append(f"column {name!r}: type {kinds[index]!r}, documented {kind!r}")
        if index < len(units) and units[index] not in allowed:
            problems.append(f"column {name!r}: unit {units[index]!r}, documented {allowed}")
    problems += [f"columns: grouped column {g!r} missing" for g in group_by if g not in columns]
    return problems


def series_problems(raw: bytes) -> list[str]:
    """Character stats: every ``usage`` list lines up with ``time`` (documented)."""
    body = json.loads(raw)
    times = body.get("time") or []
    return [
        f"usage.{key}: {len(values)} values for {len(times)} times"
        for key, values in (body.get("usage") or {}).items()
        if len(values) != len(times)
    ]


def request_problems(
    method: Callable[..., Any], sent: Mapping[str, Any], *, query: bool
) -> list[str]:
    """What keeps the fields of a request from being the parameters of the SDK's
    ``method`` (a raw client's method): unknown names, wrong types, enum values the
    SDK does not know. ``query``: the values are query strings (read laxly, as the
    wire has only strings), else JSON body fields (read strictly)."""
    hints = typing.get_type_hints(method, include_extras=False)
    parameters = set(inspect.signature(method).parameters) - {"self", "request_options"}
    problems = []
    for name, value in sent.items():
        if name not in parameters:
            problems.append(f"{name}: not a parameter of the SDK's {method.__qualname__}")
            continue
        adapter = pydantic.TypeAdapter(hints[name])
        try:
            if query:
                adapter.validate_python(value)
            else:
                adapter.validate_json(json.dumps(value), strict=True)
        except pydantic.ValidationError as err:
            problems.append(f"{name}={value!r}: {err.errors()[0]['msg']}")
            continue
        _walk(hints[name], value, name, name, problems)
    missing = [
        name
        for name, parameter in inspect.signature(method).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        and parameter.default is inspect.Parameter.empty
        and name not in sent
    ]
    problems += [
        f"{name}: required by the SDK's {method.__qualname__}, not sent" for name in missing
    ]
    return problems
