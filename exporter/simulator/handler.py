"""The simulator's HTTP handler: authentication, scenarios, faults and answers.

It answers on the real API's paths (shared with the client in
:mod:`exporter.api.paths`), checks the ``xi-api-key`` header, plays the scenario
(a rejected key, a missing permission, a cost-billed workspace), applies scripted
faults (delays, resets, truncated or drifted tables, any answer drifted field by field
for the SDK contract tests) and otherwise answers like the real endpoint, refusing a
method the endpoint does not take.
"""

from __future__ import annotations

import copy
import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from exporter.api.paths import (
    CHARACTER_STATS_PATH,
    COST_USAGE_PATH,
    SERVICE_ACCOUNT_KEYS_PATH,
    SERVICE_ACCOUNTS_PATH,
    SUBSCRIPTION_PATH,
    USAGE_PATH,
    USER_PATH,
    WORKSPACE_GROUPS_PATH,
)
from exporter.simulator.accounts import groups, service_account_keys, service_accounts
from exporter.simulator.charstats import character_stats
from exporter.simulator.control import control
from exporter.simulator.model import Fault, SimState
from exporter.simulator.tables import usage_answer

# path -> (endpoint name in the request log and in faults, the method the API takes)
ROUTES = {
    USAGE_PATH: ("usage", "POST"),
    COST_USAGE_PATH: ("cost_usage", "POST"),
    SUBSCRIPTION_PATH: ("subscription", "GET"),
    USER_PATH: ("user", "GET"),
    CHARACTER_STATS_PATH: ("character_stats", "GET"),
    SERVICE_ACCOUNTS_PATH: ("service_accounts", "GET"),
    WORKSPACE_GROUPS_PATH: ("groups", "GET"),
}
_KEYS_PREFIX, _KEYS_SUFFIX = SERVICE_ACCOUNT_KEYS_PATH.split("{service_account_user_id}")


def route(path: str) -> tuple[str, str, str | None] | None:
    """The endpoint a path names, its method and the service account id in the path."""
    if path in ROUTES:
        return (*ROUTES[path], None)
    if path.startswith(_KEYS_PREFIX) and path.endswith(_KEYS_SUFFIX):
        account = path[len(_KEYS_PREFIX) : len(path) - len(_KEYS_SUFFIX)]
        if account and "/" not in account:
            return "api_keys", "GET", account
    return None


def respond(
    state: SimState, endpoint: str, body: Any, query: dict[str, list[str]], account: str | None
) -> tuple[int, Any]:
    """The simulated API's answer to one request (status, body); the caller holds the lock."""
    if endpoint == "subscription":
        return 200, state.subscription()
    if endpoint == "user":
        return 200, state.user()
    if endpoint == "character_stats":
        return character_stats(state, query)
    if endpoint == "service_accounts":
        return service_accounts(state)
    if endpoint == "api_keys":
        return service_account_keys(state, account or "")
    if endpoint == "groups":
        return groups(state)
    if not isinstance(body, dict):
        return 400, {"detail": {"code": "invalid_json", "message": "bad body"}}
    return usage_answer(state, body, cost=endpoint == "cost_usage")


def make_handler(state: SimState) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to one simulated account."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle's algorithm the body waits
        # for the client's delayed ACK (40 ms on Linux) on every keep-alive request.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(
            self,
            status: int,
            body: Any,
            headers: dict[str, str] | None = None,
            raw: bytes | None = None,
            content_type: str = "application/json",
        ) -> None:
            data = raw if raw is not None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw) if raw else {}
            except ValueError:
                return None

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def _dispatch(self, method: str) -> None:
            url = urlparse(self.path)
            if url.path.startswith("/_sim/"):
                raw = self._body() if method == "POST" else {}
                with state.lock:
                    reply = control(
                        state,
                        method,
                        url.path,
                        parse_qs(url.query),
                        raw if isinstance(raw, dict) else {},
                    )
                self._send(*reply)
                return
            body = self._body() if method == "POST" else None
            found = route(url.path)
            endpoint = found[0] if found else None
            with state.lock:
                state.requests.append(
                    {
                        "endpoint": endpoint or url.path,
                        "method": method,
                        "path": url.path,
                        "query": parse_qs(url.query, keep_blank_values=True),
                        "body": body,
                        "at": time.time(),
                    }
                )
            if found is None or endpoint is None:
                self._send(404, {"detail": "Not Found"})
                return
            if method != found[1]:
                self._send(405, {"detail": "Method Not Allowed"}, headers={"Allow": found[1]})
                return
            if state.api_key is not None and self.headers.get("xi-api-key") != state.api_key:
                self._send(
                    401, {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}
                )
                return
            if state.scenario == "key-rejected":
                self._send(
                    401, {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}
                )
                return
            if state.scenario == "missing-permission" and endpoint == "usage":
                self._send(
                    401,
                    {
                        "detail": {
                            "status": "missing_permissions",
                            "message": "The API key you used is missing the permission "
                            "workspace_analytics_full_read to execute this operation.",
                        }
                    },
                )
                return
            if state.scenario == "cost-billed" and endpoint == "usage":
                self._send(
                    400,
                    {
                        "detail": {
                            "code": "workspace_billed_in_currency",
                            "message": "This workspace is billed in currency, not credits. Use "
                            "/v1/workspace/analytics/usage for its usage.",
                        }
                    },
                )
                return
            if state.scenario != "cost-billed" and endpoint == "cost_usage":
                self._send(
                    400,
                    {
                        "detail": {
                            "code": "workspace_billed_in_credits",
                            "message": "This workspace is billed in credits.",
                        }
                    },
                )
                return
            fault = state.take_fault(endpoint)
            if fault is not None and self._apply_fault(fault, endpoint, body):
                return
            self._send(*self._answer(endpoint, body))

        def _answer(self, endpoint: str, body: Any) -> tuple[int, Any]:
            url = urlparse(self.path)
            found = route(url.path)
            with state.lock:
                account = found[2] if found else None
                return respond(state, endpoint, body, parse_qs(url.query), account)

        def _apply_fault(self, fault: Fault, endpoint: str, body: Any) -> bool:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.pad_bytes and endpoint == "usage" and isinstance(body, dict):
                with state.lock:
                    status, answer = usage_answer(state, body)
                self._send(status, None, raw=_padded(answer, fault.pad_bytes))
                return True
            if fault.action == "reset":
                self.close_connection = True
                self.connection.close()
                return True
            if fault.action == "html":
                self._send(
                    fault.status or 502,
                    None,
                    raw=b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                    content_type="text/html",
                )
                return True
            if fault.action in (
                "truncate",
                "drop_column",
                "reorder",
                "extra_column",
                "nulls",
                "drift",
            ):
                status, normal = self._answer(endpoint, body)
                if status != 200:
                    self._send(status, normal)
                    return True
                if fault.action == "truncate":
                    data = json.dumps(normal).encode()
                    self._send(200, None, raw=data[: len(data) // 2])
                    return True
                if fault.action == "drift":
                    self._send(200, drift(normal, fault.drift or {}))
                    return True
                self._send(200, _distort(normal, fault.action))
                return True
            if fault.status is not None:
                raw = fault.body.encode() if fault.body is not None else None
                self._send(
                    fault.status,
                    {"detail": {"status": "error", "message": "injected"}},
                    headers=fault.headers,
                    raw=raw,
                )
                return True
            return False  # a pure delay: answer normally

    return Handler


def _padded(answer: dict[str, Any], size: int) -> bytes:
    """A usage table grown to about ``size`` bytes with rows of zero credits in its
    first row's bucket: as costly to parse as a real answer that large, and the same
    totals."""
    rows = answer.get("rows") or []
    data = json.dumps(answer).encode()
    if not rows or len(data) >= size:
        return data
    index = answer["columns"].index("credits_used")
    zero = json.dumps([*rows[0][:index], "0", *rows[0][index + 1 :]]).encode()
    count = (size - len(data)) // (len(zero) + 1)
    grown = json.dumps(rows).encode()[:-1] + b"," + b",".join([zero] * count) + b"]"
    marker = '"rows-go-here"'
    head, tail = json.dumps({**answer, "rows": "rows-go-here"}).encode().split(marker.encode())
    return head + grown + tail


def _distort(answer: dict[str, Any], action: str) -> dict[str, Any]:
    """A copy of a usage table drifted the way real tables drift."""
    columns = list(answer.get("columns", []))
    rows = [list(r) for r in answer.get("rows", [])]
    if not columns:
        return answer
    if action == "drop_column" and "credits_used" in columns:
        index = columns.index("credits_used")
        columns.pop(index)
        rows = [r[:index] + r[index + 1 :] for r in rows]
        return {"columns": columns, "rows": rows}
    if action == "reorder":
        order = list(reversed(range(len(columns))))
        return {
            "columns": [columns[i] for i in order],
            "rows": [[r[i] for i in order] for r in rows],
            "column_types": [answer["column_types"][i] for i in order],
            "column_units": [answer["column_units"][i] for i in order],
        }
    if action == "extra_column":
        return {
            "columns": [*columns, "model_name"],
            "rows": [[*r, "Multilingual v2"] for r in rows],
        }
    if action == "nulls" and "product_type_label" in columns:
        index = columns.index("product_type_label")
        return {"columns": columns, "rows": [[*r[:index], None, *r[index + 1 :]] for r in rows]}
    return answer


def drift(answer: Any, spec: dict[str, Any]) -> Any:
    """A copy of any answer drifted as ``spec`` says, for tests that prove a check fails.

    ``drop``: dotted paths to delete (list items by index, e.g. ``"rows.0.2"``);
    ``set``: dotted path -> new value; ``rename_columns``: table column -> new name.
    """
    drifted = copy.deepcopy(answer)

    def parent(path: str) -> tuple[Any, str | int]:
        *steps, last = path.split(".")
        node = drifted
        for step in steps:
            node = node[int(step)] if isinstance(node, list) else node[step]
        return node, int(last) if isinstance(node, list) else last

    for path in spec.get("drop", []):
        node, key = parent(path)
        if isinstance(node, dict):
            node.pop(key, None)  # a field the answer does not have is already dropped
        else:
            del node[key]
    for path, value in spec.get("set", {}).items():
        node, key = parent(path)
        node[key] = value
    renames = spec.get("rename_columns", {})
    if renames and isinstance(drifted, dict) and isinstance(drifted.get("columns"), list):
        drifted["columns"] = [renames.get(c, c) for c in drifted["columns"]]
    return drifted
