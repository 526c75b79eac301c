"""Bounded label sets for opt-in dimensions, without breaking the counters.

A workspace may group usage by dimensions with many values (500 voices, thousands of
users). Each such dimension gets at most ``cap`` values of its own (the top values by
credits this cycle, or an allowlist); every other value is folded into ``other``.

Membership is sticky within a ledger's life: once a value has its own series it
keeps it, so no exported series ever shrinks. Counters are built by *routing*: each
time the ledger's raw totals grow, the growth is added to the series the raw label
set maps to at that moment. A value promoted later starts its own series at 0 while
its earlier credits stay in ``other``. So every exported counter is monotonic, and
their sum is always exactly the ledger's total.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.api.parse import Labels

OTHER = "other"


class SeriesRouter:
    """Maps raw label sets to exported ones and accumulates the exported counters."""

    def __init__(
        self,
        label_names: tuple[str, ...],
        caps: Mapping[str, int | None],
        allow: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self.label_names = label_names
        self.caps = dict(caps)
        self.allow = dict(allow or {})
        self.members: dict[str, set[str]] = {
            d: set(self.allow.get(d, ())) for d in label_names if self._bounded(d)
        }
        self.total: dict[Labels, float] = {}
        self.down: dict[Labels, float] = {}
        self._routed_total: dict[Labels, float] = {}
        self._routed_down: dict[Labels, float] = {}

    def _bounded(self, dimension: str) -> bool:
        return dimension in self.allow or self.caps.get(dimension) is not None

    def map(self, raw: Labels) -> Labels:
        """The exported label set of a raw one."""
        if not self.members:
            return raw
        return tuple(
            value if name not in self.members or value in self.members[name] else OTHER
            for name, value in zip(self.label_names, raw, strict=True)
        )

    def _admit(self, ranking: Mapping[Labels, float]) -> None:
        """Give the heaviest values their own series while their dimension has room."""
        for index, name in enumerate(self.label_names):
            if name not in self.members or name in self.allow:
                continue  # unbounded, or an explicit allowlist decides alone
            cap = self.caps[name]
            assert cap is not None
            members = self.members[name]
            if len(members) >= cap:
                continue
            weights: dict[str, float] = {}
            for labels, credits in ranking.items():
                weights[labels[index]] = weights.get(labels[index], 0.0) + credits
            for value, credits in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0])):
                if len(members) >= cap:
                    break
                if credits > 0 and value != OTHER:
                    members.add(value)

    def update(
        self,
        total: Mapping[Labels, float],
        down: Mapping[Labels, float],
        ranking: Mapping[Labels, float],
    ) -> None:
        """Route the growth of the raw counters since the last update."""
        self._admit(ranking)
        for raw, value in total.items():
            grown = value - self._routed_total.get(raw, 0.0)
            key = self.map(raw)
            self.total[key] = self.total.get(key, 0.0) + max(grown, 0.0)
            self._routed_total[raw] = max(value, self._routed_total.get(raw, 0.0))
        for raw, value in down.items():
            grown = value - self._routed_down.get(raw, 0.0)
            key = self.map(raw)
            self.down[key] = self.down.get(key, 0.0) + max(grown, 0.0)
            self._routed_down[raw] = max(value, self._routed_down.get(raw, 0.0))
        for key in self.total:
            self.down.setdefault(key, 0.0)

    def gauge(self, values: Mapping[Labels, float]) -> dict[Labels, float]:
        """A gauge (like the cycle's credits) summed over the current mapping."""
        out: dict[Labels, float] = {}
        for raw, value in values.items():
            key = self.map(raw)
            out[key] = out.get(key, 0.0) + value
        return out

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state, persisted next to the ledger."""

        def pairs(values: Mapping[Labels, float]) -> list[list[Any]]:
            return [[list(k), v] for k, v in sorted(values.items())]

        return {
            "label_names": list(self.label_names),
            "members": {k: sorted(v) for k, v in self.members.items()},
            "total": pairs(self.total),
            "down": pairs(self.down),
            "routed_total": pairs(self._routed_total),
            "routed_down": pairs(self._routed_down),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Load a persisted state; raise ValueError if it does not fit."""
        try:
            if tuple(data["label_names"]) != self.label_names:
                raise ValueError("other dimensions")
            width = len(self.label_names)

            def mapping(raw: Any) -> dict[Labels, float]:
                out = {}
                for labels, value in raw:
                    if len(labels) != width or not isinstance(value, int | float):
                        raise ValueError("malformed entry")
                    out[tuple(str(x) for x in labels)] = float(value)
                return out

            members = {str(k): {str(v) for v in vs} for k, vs in data["members"].items()}
            total, down = mapping(data["total"]), mapping(data["down"])
            routed_total, routed_down = mapping(data["routed_total"]), mapping(data["routed_down"])
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"malformed router state: {err}") from None
        for name in self.members:
            self.members[name] |= members.get(name, set())
        self.total, self.down = total, down
        self._routed_total, self._routed_down = routed_total, routed_down
