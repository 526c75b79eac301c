"""A simulated ElevenLabs API, served over loopback HTTP.

``--demo`` runs it inside the exporter so a newcomer sees real-looking metrics with
no key, and the tests run it as the exporter's upstream. It answers like the real
API: credits as strings, ISO timestamps, an appended display column, rows only for
buckets with usage, a daily and weekly rhythm over seven products with occasional
bursts, recent minutes that arrive incomplete and grow (so the exporter sees real
revisions), and a subscription whose ``character_count`` is the usage since the
cycle start.

Under ``/_sim/`` it offers what tests need: a frozen clock, injected revisions,
scripted faults, the ground truth and a log of the requests received.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

# product_type -> (average credits per minute at peak-free baseline, display name)
PRODUCTS: dict[str, tuple[float, str]] = {
    "text_to_speech": (9.0, "Text to Speech"),
    "conversational_ai": (5.0, "Agents Platform"),
    "speech_to_text": (2.0, "Speech to Text"),
    "dubbing": (1.2, "Dubbing"),
    "sound_effects": (0.8, "Sound Effects"),
    "voice_changer": (0.6, "Voice Changer"),
    "music": (0.5, "Music"),
}
PRODUCT_INDEX = {name: i for i, name in enumerate(PRODUCTS)}
MODELS = ("eleven_multilingual_v2", "eleven_flash_v2_5", "eleven_turbo_v2_5", "scribe_v1")
USERS = ("ada", "grace", "linus", "margaret", "ken", "barbara")
# hashed_xi_api_key values: every credit is spent through one of these service-account keys.
API_KEYS = ("k_3f9a", "k_81c2", "k_e07d")
SOURCES = ("api", "web", "sdk")
REGIONS = ("us", "eu")
# Dimensions the simulator can group by, and the display column the API appends for them.
DIMENSIONS = ("voice_id", "model", "user_id", "hashed_xi_api_key", "request_source", "region")
DISPLAY_COLUMNS = {
    "product_type": "product_type_label",
    "voice_id": "voice_name",
    "user_id": "user_label",
}
COST_PER_CREDIT = 0.0001  # USD, for the cost-billed scenario
_MASK = (1 << 64) - 1
CYCLE_DAY, CYCLE_TIME = 7, (9, 13, 27)  # the cycle resets on the 7th at 09:13:27 UTC
SCENARIOS = (
    "normal",
    "quota-nearly-exhausted",
    "key-rejected",
    "missing-permission",
    "cost-billed",
)


def _mix(value: int) -> int:
    """splitmix64: a fast, well-spread deterministic hash."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def unit(*parts: int) -> float:
    """A deterministic number in [0, 1) from the parts."""
    value = 0
    for part in parts:
        value = _mix(value ^ part)
    return (value >> 11) / float(1 << 53)


def full_minute(product: int, minute: int, seed: int = 0) -> float:
    """Final credits of one product in one minute (a multiple of 0.5)."""
    base = list(PRODUCTS.values())[product][0]
    hour = (minute // 60) % 24
    rhythm = 0.3 + 1.6 * max(0.0, math.sin(math.pi * (hour - 6) / 16))  # busy 06-22 UTC
    weekday = (minute // 1440 + 3) % 7  # 0 = Monday
    weekly = 0.55 if weekday >= 5 else 1.0
    burst = 6.0 if unit(seed, product, minute // 30, 77) < 0.012 else 1.0
    lam = base * rhythm * weekly * burst
    return math.floor(lam * 2 * unit(seed, product, minute) * 2) / 2


@lru_cache(maxsize=65536)
def full_hour(product: int, hour: int, seed: int = 0) -> float:
    """Final credits of one product in one UTC hour."""
    start = hour * 60
    return sum(full_minute(product, m, seed) for m in range(start, start + 60))


def dimension_value(name: str, product: int, minute: int, seed: int = 0, voices: int = 40) -> str:
    """The value of one dimension for a product's minute (see :meth:`SimState.dimension`)."""
    u = unit(seed, product, minute, DIMENSIONS.index(name) + 101)
    if name == "voice_id":
        return f"voice{int(voices * u**3):04d}"  # a few voices carry most usage
    if name == "model":
        return MODELS[int(len(MODELS) * u)]
    if name == "user_id":
        return f"u_{USERS[int(len(USERS) * u**2)]}"
    if name == "hashed_xi_api_key":
        return API_KEYS[int(len(API_KEYS) * u)]
    if name == "request_source":
        return SOURCES[int(len(SOURCES) * u)]
    return REGIONS[int(len(REGIONS) * u)]


@lru_cache(maxsize=65536)
def hour_split(
    name: str, product: int, hour: int, seed: int = 0, voices: int = 40
) -> tuple[tuple[str, float], ...]:
    """Final credits of one product in one UTC hour per value of one dimension."""
    sums: dict[str, float] = {}
    for minute in range(hour * 60, hour * 60 + 60):
        value = full_minute(product, minute, seed)
        if value:
            key = dimension_value(name, product, minute, seed, voices)
            sums[key] = sums.get(key, 0.0) + value
    return tuple(sorted(sums.items()))


def cycle_bounds(now: float) -> tuple[int, int]:
    """The simulated billing cycle ``[start, reset)`` containing ``now``.

    Cycles reset monthly on the same day and time, so stepping a month is moving the
    month number (the 7th exists in every month).
    """
    moment = datetime.fromtimestamp(now, UTC)
    candidate = moment.replace(
        day=CYCLE_DAY, hour=CYCLE_TIME[0], minute=CYCLE_TIME[1], second=CYCLE_TIME[2], microsecond=0
    )
    if candidate > moment:
        candidate = _step_month(candidate, -1)
    return int(candidate.timestamp()), int(_step_month(candidate, 1).timestamp())


def _step_month(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1)


@dataclass
class Fault:
    """A scripted misbehaviour for the next ``times`` matching requests (-1: forever)."""

    endpoint: str = "*"
    times: int = 1
    status: int | None = None
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    action: str | None = None  # "reset", "truncate", "html", "drop_column", "reorder", ...
    drift: dict[str, Any] | None = None  # action "drift": see handler.drift
    pad_bytes: int = 0  # usage answers padded with zero-credit rows to about this size


class SimState:
    """The simulated account: usage model, clock, revisions, faults and logs."""

    def __init__(
        self,
        *,
        scenario: str = "normal",
        api_key: str | None = "demo",
        seed: int = 0,
        frozen_at: float | None = None,
        voices: int = 40,
    ) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; choose from {SCENARIOS}")
        self.lock = threading.Lock()
        self.scenario = scenario
        self.api_key = api_key
        self.seed = seed
        self.frozen_at = frozen_at
        self.adjustments: dict[tuple[int, int], float] = {}  # (product, minute) -> credits
        self.faults: list[Fault] = []
        self.requests: list[dict[str, Any]] = []
        self.limit_override: float | None = None
        self.products = list(PRODUCTS)
        self.voices = voices

    def dimension(self, name: str, product: int, minute: int) -> str:
        """The value of one dimension for a product's minute: all of that minute's
        credits go to one value, so every breakdown adds up to the product total."""
        return dimension_value(name, product, minute, self.seed, self.voices)

    @staticmethod
    def display(name: str, value: str) -> str | None:
        """The display name the API appends for an id column."""
        if name == "product_type":
            return PRODUCTS[value][1] if value in PRODUCTS else value
        if name == "voice_id":
            return f"Voice {int(value[5:])}"
        if name == "user_id":
            return f"{value[2:].title()} ({value[2:]}@example.com)"
        return None

    def breakdown(
        self, start: int, end: int, group_by: list[str], now: float
    ) -> dict[tuple[str, ...], float]:
        """Visible credits in ``[start, end)`` per value of the ``group_by`` columns."""
        sums: dict[tuple[str, ...], float] = {}
        extra = [g for g in group_by if g != "product_type"]
        for index, name in enumerate(self.products):
            if not extra:
                value = self.credits(index, start, end, now)
                if value:
                    key: tuple[str, ...] = (name,) if group_by else ()
                    sums[key] = sums.get(key, 0.0) + value
                continue
            for minute in range(start // 60, end // 60):
                value = self.visible_minute(index, minute, now)
                if value:
                    key = tuple(
                        name if g == "product_type" else self.dimension(g, index, minute)
                        for g in group_by
                    )
                    sums[key] = sums.get(key, 0.0) + value
        return sums

    def truth_by(self, start: int, end: int, group_by: list[str]) -> dict[tuple[str, ...], float]:
        """Ground truth per label set, for tests of breakdowns."""
        return {k: v for k, v in self.breakdown(start, end, group_by, self.now()).items() if v}

    def now(self) -> float:
        """The simulated time: frozen when a test froze it, else real time."""
        return self.frozen_at if self.frozen_at is not None else time.time()

    def visible_minute(self, product: int, minute: int, now: float) -> float:
        """What the API shows now for one minute: the minute under way shows what has
        been used so far, recent minutes arrive incomplete, the future shows nothing."""
        age = now - (minute + 1) * 60
        if age < -60:
            return 0.0
        value = full_minute(product, minute, self.seed)
        if age < 0:
            value = math.floor(value * (age + 60) / 60 * 0.6 * 2) / 2
        elif age < 60:
            value = math.floor(value * 0.6 * 2) / 2
        elif age < 180:
            value = math.floor(value * 0.9 * 2) / 2
        return value + self.adjustments.get((product, minute), 0.0)

    def credits(self, product: int, start: int, end: int, now: float) -> float:
        """Visible credits of one product in ``[start, end)`` (minute-aligned seconds)."""
        total = 0.0
        minute, last = start // 60, end // 60
        final_before = int(now // 60) - 4  # older minutes are complete: use cached hours
        while minute < last:
            if minute % 60 == 0 and minute + 60 <= min(last, final_before):
                total += full_hour(product, minute // 60, self.seed)
                if self.adjustments:
                    total += sum(
                        delta
                        for (p, m), delta in self.adjustments.items()
                        if p == product and minute <= m < minute + 60
                    )
                minute += 60
            else:
                total += self.visible_minute(product, minute, now)
                minute += 1
        return total

    def truth(self, start: int, end: int) -> dict[str, float]:
        """Ground truth: visible credits per product in ``[start, end)`` at the sim's now."""
        now = self.now()
        return {name: self.credits(i, start, end, now) for i, name in enumerate(self.products)}

    def cycle_window(self) -> tuple[int, int]:
        """``[start, end)`` of the usage counted this billing cycle (whole minutes up to now)."""
        start, _ = cycle_bounds(self.now())
        return start - start % 60, int(self.now() // 60) * 60

    def cycle_usage_by(self, name: str) -> dict[str, float]:
        """Visible credits this billing cycle per value of one dimension (``user_id``,
        ``hashed_xi_api_key``, ...): the same credits as the subscription's
        ``character_count``, split the way the usage endpoint splits them."""
        now = self.now()
        first, last = self.cycle_window()
        final_before = int(now // 60) - 4  # older minutes are complete: use cached hours
        sums: dict[str, float] = {}

        def add(key: str, value: float) -> None:
            sums[key] = sums.get(key, 0.0) + value

        for product in range(len(self.products)):
            minute = first // 60
            while minute < last // 60:
                if minute % 60 == 0 and minute + 60 <= min(last // 60, final_before):
                    hour = minute // 60
                    for key, value in hour_split(name, product, hour, self.seed, self.voices):
                        add(key, value)
                    for (p, m), delta in self.adjustments.items():
                        if p == product and minute <= m < minute + 60:
                            add(self.dimension(name, product, m), delta)
                    minute += 60
                    continue
                value = self.visible_minute(product, minute, now)
                if value:
                    add(self.dimension(name, product, minute), value)
                minute += 1
        return sums

    def _subscription_fields(self) -> dict[str, Any]:
        """The fields of the subscription that ``GET /v1/user`` repeats."""
        now = self.now()
        _, reset = cycle_bounds(now)
        used = sum(self.truth(*self.cycle_window()).values())
        limit = 1_000_000.0
        if self.scenario == "quota-nearly-exhausted":
            if self.limit_override is None:
                self.limit_override = float(math.ceil(used / 0.985))
            limit = self.limit_override
        return {
            "tier": "pro",
            "status": "active",
            "character_count": int(used),
            "character_limit": int(limit),
            "max_credit_limit_extension": 0,
            "max_character_limit_extension": 0,
            "can_extend_character_limit": False,
            "allowed_to_extend_character_limit": False,
            "next_character_count_reset_unix": reset,
            "currency": "usd",
            "billing_period": "monthly_period",
            "character_refresh_period": "monthly_period",
            "voice_slots_used": 12,
            "voice_limit": 160,
            "voice_add_edit_counter": 31,
            "max_voice_add_edits": 480,
            # Consolidated billing: the group's workspaces hold 2 between them, this one 1.
            "professional_voice_slots_used": 2,
            "professional_voice_slots_used_in_workspace": 1,
            "professional_voice_limit": 2,
            "can_extend_voice_limit": False,
            "can_use_instant_voice_cloning": True,
            "can_use_professional_voice_cloning": True,
            "current_overage": {"amount": "0.00", "currency": "usd"},
        }

    def subscription(self) -> dict[str, Any]:
        """The ``GET /v1/user/subscription`` body, consistent with the usage data."""
        _, reset = cycle_bounds(self.now())
        return {
            **self._subscription_fields(),
            "next_invoice": {
                "amount_due_cents": 9900,
                "subtotal_cents": 9900,
                "tax_cents": 0,
                "discounts": [],
                "next_payment_attempt_unix": reset,
                "payment_intent_statusses": [],
            },
            "open_invoices": [],
            "has_open_invoices": False,
            "pending_change": None,
        }

    def user(self) -> dict[str, Any]:
        """The ``GET /v1/user`` body: the key's user, its workspace and the subscription.

        Only a preview of the key: the full key some older answers carried never
        appears here (the SDK's model has no such field).
        """
        return {
            "user_id": "u_ada",
            "workspace_id": "ws_4b2d9e",
            "subscription": self._subscription_fields(),
            "is_new_user": False,
            "can_use_delayed_payment_methods": False,
            "is_onboarding_completed": True,
            "is_onboarding_checklist_completed": True,
            "first_name": "Ada",
            "is_api_key_hashed": True,
            "xi_api_key_preview": "sk_...3f9a",
            "created_at": 1704067200,
            "seat_type": "workspace_admin",
        }

    def take_fault(self, endpoint: str) -> Fault | None:
        """The next scripted fault for this endpoint, if any (consumed)."""
        with self.lock:
            for fault in self.faults:
                if fault.endpoint in ("*", endpoint) and fault.times != 0:
                    if fault.times > 0:
                        fault.times -= 1
                    return fault
            self.faults = [f for f in self.faults if f.times != 0]
        return None
