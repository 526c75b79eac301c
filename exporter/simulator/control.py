"""The simulator's control plane under ``/_sim/``: what tests need to steer it.

A frozen clock, injected revisions, scripted faults, a scenario switch, the ground
truth and the log of the requests received. Never part of the real API.
"""

from __future__ import annotations

from typing import Any

from exporter.simulator.model import PRODUCT_INDEX, Fault, SimState


def control(
    state: SimState, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """Answer one control request (status, body); the caller holds ``state.lock``."""
    post = method == "POST"
    if path == "/_sim/truth":
        start = int(query.get("start", ["0"])[0])
        end = int(query.get("end", [str(int(state.now()))])[0])
        return 200, {"now": state.now(), "credits": state.truth(start, end)}
    if path == "/_sim/clock" and post:
        if body.get("real"):
            state.frozen_at = None
        elif "now" in body:
            state.frozen_at = float(body["now"])
        elif "advance" in body:
            state.frozen_at = state.now() + float(body["advance"])
        return 200, {"now": state.now()}
    if path == "/_sim/revise" and post:
        key = (PRODUCT_INDEX[body["product_type"]], int(body["timestamp"]) // 60)
        state.adjustments[key] = state.adjustments.get(key, 0.0) + float(body["credits"])
        return 200, {"ok": True}
    if path == "/_sim/faults" and post:
        state.faults.extend(Fault(**item) for item in body.get("faults", []))
        return 200, {"queued": len(state.faults)}
    if path == "/_sim/faults/clear" and post:
        state.faults.clear()
        return 200, {"queued": 0}
    if path == "/_sim/scenario" and post:
        state.scenario = str(body["name"])
        return 200, {"scenario": state.scenario}
    if path == "/_sim/requests":
        return 200, {"requests": state.requests}
    return 404, {"detail": "unknown control"}
