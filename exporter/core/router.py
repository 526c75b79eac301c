"""The exported counters: increments routed to bounded label sets, and accumulated.

This is the one place a counter is accumulated. The ledger hands out increments per
raw label set; the router adds each to the series the raw label set maps to at that
moment, and persists the totals once.

A workspace may group usage by dimensions with many values (500 voices, thousands of
users). Each such dimension gets at most ``cap`` values of its own (the top values by
credits this cycle, or an allowlist); every other value is folded into ``other``.
Membership is sticky within a ledger's life: once a value has its own series it
keeps it, so no exported series ever shrinks. A value promoted later starts its own
series at 0 while its earlier credits stay in ``other``. So every exported counter
is monotonic, and their sum is always exactly the sum of the increments. Without
bounded dimensions the mapping is the identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.api.parse import Labels
from exporter.core.bounds import MAX_TOTAL
from exporter.core.bounds import amount as plausible
from exporter.core.ledger import Increments

OTHER = "other"


class SeriesRouter:
    """Maps raw label sets to exported ones and accumulates the exported counters."""

    def __init__(
        self,
        label_names: tuple[str, ...],
        caps: Mapping[str, int | None] | None = None,
        allow: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self.label_names = label_names
        self.caps = dict(caps or {})
        self.allow = dict(allow or {})
        self.members: dict[str, set[str]] = {
            d: set(self.allow.get(d, ())) for d in label_names if self._bounded(d)
        }
        self.total: dict[Labels, float] = {}
        self.down: dict[Labels, float] = {}
        self._floor: tuple[dict[Labels, float], dict[Labels, float]] | None = None

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

    def add(self, increments: Increments, ranking: Mapping[Labels, float]) -> None:
        """Add one apply's increments, after admitting the values ``ranking`` favours."""
        if self.members:
            self._admit(ranking)
        for raw, amount in increments.used.items():
            key = self.map(raw)
            self.total[key] = self.total.get(key, 0.0) + amount
            self.down.setdefault(key, 0.0)
        for raw, amount in increments.down.items():
            key = self.map(raw)
            self.down[key] = self.down.get(key, 0.0) + amount
            self.total.setdefault(key, 0.0)
        if self._floor is not None:
            self._apply_floor(*self._floor)
            self._floor = None

    def floor_at(self, total: Mapping[Labels, float], down: Mapping[Labels, float]) -> None:
        """After the next add, never export less than an earlier run did.

        Used when a reseed replaces persisted counters that could not be resumed. A
        reseed reads the API's current values, which lack the credits later revised
        away; a lower counter would read to Prometheus as a reset (a false spike of
        the whole value). The credits revised away are known from the old downward
        counter, so the reseeded total is raised by them, and never left below the
        old total.
        """
        self._floor = (dict(total), dict(down))

    def _apply_floor(self, total: Mapping[Labels, float], down: Mapping[Labels, float]) -> None:
        for key in set(total) | set(down):
            revised_away = down.get(key, 0.0)
            self.total[key] = max(total.get(key, 0.0), self.total.get(key, 0.0) + revised_away)
            self.down[key] = max(self.down.get(key, 0.0), revised_away)

    def gauge(self, values: Mapping[Labels, float]) -> dict[Labels, float]:
        """A gauge (like the cycle's credits) summed over the current mapping."""
        out: dict[Labels, float] = {}
        for raw, value in values.items():
            key = self.map(raw)
            out[key] = out.get(key, 0.0) + value
        return out

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state: the membership and the exported totals."""

        def pairs(values: Mapping[Labels, float]) -> list[list[Any]]:
            return [[list(k), v] for k, v in sorted(values.items())]

        return {
            "label_names": list(self.label_names),
            "members": {k: sorted(v) for k, v in self.members.items()},
            "total": pairs(self.total),
            "down": pairs(self.down),
        }

    def restore(self, data: Mapping[str, Any], *, totals: bool = True) -> None:
        """Load a persisted state; raise ValueError if it does not fit or is implausible.

        Every total must be finite and from 0 to :data:`~exporter.core.ledger.MAX_TOTAL`
        (a counter never goes below 0, and no workspace ever used this much), with a
        label set as wide as the dimensions. With ``totals`` False only the
        membership is taken and the totals become the floor of the next add (a reseed,
        see :meth:`floor_at`).
        """
        try:
            if tuple(data["label_names"]) != self.label_names:
                raise ValueError("other dimensions")
            width = len(self.label_names)

            def mapping(raw: Any) -> dict[Labels, float]:
                out = {}
                for labels, value in raw:
                    if not isinstance(labels, list) or len(labels) != width:
                        raise ValueError("malformed entry")
                    out[tuple(str(x) for x in labels)] = plausible(value, MAX_TOTAL)
                return out

            members = {str(k): {str(v) for v in vs} for k, vs in data["members"].items()}
            total, down = mapping(data["total"]), mapping(data["down"])
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise ValueError(f"malformed router state: {err}") from None
        for name in self.members:
            self.members[name] |= members.get(name, set())
        if totals:
            self.total, self.down = total, down
        else:
            self.floor_at(total, down)
