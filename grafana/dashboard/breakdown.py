"""The row about where the credits go: per product, and per any opt-in dimension."""

from __future__ import annotations

from dashboard.layout import Grid, Json
from dashboard.panels import bargauge, field_override, table, target
from dashboard.queries import PROD, sort_desc, top_breakdown, top_breakdown_share

# The labels a workspace can break its credits down by: product_type (always) and the
# opt-in dimensions (a workspace's `group_by`), the values the usage endpoint accepts.
BREAKDOWN_LABELS = (
    "product_type",
    "voice_id",
    "model",
    "user_id",
    "hashed_xi_api_key",
    "request_source",
    "region",
    "resource_id",
    "subresource_id",
    "billing_group_id",
    "reporting_workspace_id",
    "request_queue_type",
    "voice_multiplier",
    "fiat_currency",
    "fiat_charge_type",
    "surface",
    "actor",
)
TOP_COUNTS = ("5", "10", "20", "50")
SHARE_COLUMN = "Share of total"


def breakdown_row(grid: Grid) -> None:
    """Which products the credits went to, today, this week and this cycle, and the top
    values of any dimension this cycle."""
    grid.row("Where the credits go")
    today = bargauge(
        "Today so far by product",
        "Credits used per product since midnight (dashboard time zone), summed over the "
        "selected workspaces, largest first. Counts what Prometheus saw: usage before "
        "Prometheus first scraped the exporter is not included.",
        product_query(f"increase(elevenlabs_credits_used_total{{{PROD}}}[$__range])"),
        unit="locale",
    )
    # The panel's own time range: from midnight, whatever range the dashboard shows.
    today["timeFrom"] = "now/d"
    week = bargauge(
        "Last 7 days by product",
        "Credits used per product in the 7 days before the end of the time range, summed "
        "over the selected workspaces, largest first (counts what Prometheus saw).",
        product_query(f"increase(elevenlabs_credits_used_total{{{PROD}}}[7d])"),
        unit="locale",
    )
    cycle = bargauge(
        "This cycle by product",
        "Credits used per product since the current billing cycle began, from the "
        "exporter's usage ledger, summed over the selected workspaces, largest first.",
        product_query(f"elevenlabs_cycle_credits_used{{{PROD}}}"),
        unit="locale",
    )
    grid.add(today, week, cycle, w=8, h=8)
    grid.add(top_table(), w=24, h=9)


def product_query(series: str) -> Json:
    """`series` summed per product, largest first, as one instant query."""
    return target(sort_desc(f"sum by (product_type) ({series})"), "{{product_type}}", instant=True)


def top_table() -> Json:
    """The top values of the chosen label by credits this cycle, with their share."""
    return table(
        "Top ${top_n} by ${breakdown} this cycle",
        "The ${top_n} values of ${breakdown} (the 'Break down by' variable: the product or "
        "any opt-in dimension of the workspaces' group_by) with the most credits since the "
        "cycle began, summed over the selected workspaces and products, with their share of "
        "the credits of all series that carry ${breakdown}. Values beyond a workspace's "
        'max_values are counted together as "other". Name is the display name '
        "ElevenLabs gives an id (elevenlabs_dimension_info), where it gives one. Empty "
        "when no selected workspace groups by ${breakdown}.",
        [
            target(top_breakdown("$breakdown", "$top_n"), "", instant=True, table=True),
            target(top_breakdown_share("$breakdown", "$top_n"), "", "B", instant=True, table=True),
        ],
        columns={"Value #A": "Credits", "Value #B": SHARE_COLUMN, "name": "Name"},
        sort_by="Credits",
        overrides=[
            field_override(
                SHARE_COLUMN,
                ("unit", "percent"),
                ("decimals", 1),
                ("min", 0),
                ("max", 100),
                ("custom.cellOptions", {"mode": "basic", "type": "gauge"}),
            )
        ],
    )
