"""The row about per-API-key and per-group credit limits (opt-in per workspace:
``key_limits``, ``group_limits``): which keys and groups are nearest their limit, and
what each used against its limit. Empty for workspaces that have not opted in."""

from __future__ import annotations

from dashboard.layout import Grid, Json
from dashboard.panels import bargauge, field_override, table, target, thresholds, value_mappings
from dashboard.queries import QUOTA_PERCENT, WS, sort_desc

KEY_LABELS = "workspace, key_id, key_name, service_account"
GROUP_LABELS = "workspace, group_id, group"
SHARE_COLUMN = "Share of limit"
OPT_IN = (
    "Only for workspaces with {switch}: true in the exporter's configuration (at most "
    "{cap} per workspace, those nearest their limit); empty for the others."
)
KEY_WORDS = OPT_IN.format(switch="key_limits", cap="max_keys")
GROUP_WORDS = OPT_IN.format(switch="group_limits", cap="max_groups")
ALERTS_AT = (
    "Orange from 90% and red from 98%, where {alert} warns and pages (the thresholds of "
    "the quota alert)."
)


def per_key(metric: str, condition: str = "") -> str:
    """One value per API key of the selected workspaces."""
    return f"max by ({KEY_LABELS}) ({metric}{{{WS}}}{condition})"


def per_group(metric: str, condition: str = "") -> str:
    """One value per group of the selected workspaces."""
    return f"max by ({GROUP_LABELS}) ({metric}{{{WS}}}{condition})"


# Enabled keys with a limit > 0, as the alert judges them: a disabled key cannot spend.
KEY_SHARE = (
    f"100 * {per_key('elevenlabs_api_key_credits_used')} "
    f"/ {per_key('elevenlabs_api_key_credits_limit', ' > 0')} "
    "unless on (workspace, key_id) "
    f"{per_key('elevenlabs_api_key_disabled', ' == 1')}"
)
# Groups with a numeric limit > 0 ("unlimited" has no limit series).
GROUP_SHARE = (
    f"100 * {per_group('elevenlabs_group_credits_used')} "
    f"/ {per_group('elevenlabs_group_credits_limit', ' > 0')}"
)


def share_colours(panel: Json) -> Json:
    """`panel` (a percent bar gauge) coloured where the limit alerts fire, up to 100%."""
    defaults = panel["fieldConfig"]["defaults"]
    defaults["color"] = {"mode": "thresholds"}
    defaults["max"] = 100
    defaults["decimals"] = 1
    defaults["thresholds"] = thresholds(
        "green", *zip(QUOTA_PERCENT, ("orange", "red"), strict=True)
    )
    return panel


def share_column() -> Json:
    """The share column of a table: a gauge cell from 0 to 100%, coloured as the bars."""
    return field_override(
        SHARE_COLUMN,
        ("unit", "percent"),
        ("decimals", 1),
        ("min", 0),
        ("max", 100),
        ("color", {"mode": "thresholds"}),
        ("thresholds", thresholds("green", *zip(QUOTA_PERCENT, ("orange", "red"), strict=True))),
        ("custom.cellOptions", {"mode": "basic", "type": "gauge"}),
    )


def limits_row(grid: Grid) -> None:
    """API keys and groups by share of their limit, and each one's use against it."""
    grid.row("API keys and groups")
    keys = bargauge(
        "API keys by share of their limit",
        "Credits each service-account API key used this billing period as a share of its "
        "own credit limit (character_limit), largest first. A key stops working at 100%. "
        "Keys without a limit, with a limit of 0, and disabled keys are not shown. "
        + ALERTS_AT.format(alert="ElevenLabsAPIKeyCreditLimitNearlyExhausted")
        + " "
        + KEY_WORDS,
        target(sort_desc(KEY_SHARE), "{{key_name}} ({{workspace}})", instant=True),
        unit="percent",
    )
    groups = bargauge(
        "Groups by share of their limit",
        "Credits the members of each workspace group used this billing period as a share "
        "of the group's usage limit (group_usage_limit), largest first. Groups whose "
        'limit is "unlimited" are not shown. '
        + ALERTS_AT.format(alert="ElevenLabsGroupCreditLimitNearlyExhausted")
        + " "
        + GROUP_WORDS,
        target(sort_desc(GROUP_SHARE), "{{group}} ({{workspace}})", instant=True),
        unit="percent",
    )
    grid.add(share_colours(keys), share_colours(groups), w=12, h=8)
    grid.add(keys_table(), groups_table(), w=12, h=8)


def keys_table() -> Json:
    """Per key: credits used, its limit, the share and whether it is disabled."""
    return table(
        "API keys: used and limit",
        "Per service-account API key: the credits it used this billing period "
        "(character_count), its credit limit (character_limit; empty for a key without "
        "one), the share used, and whether ElevenLabs disabled it (is_disabled). "
        "hashed_xi_api_key links a key to the credits broken down by API key (Break down "
        "by: hashed_xi_api_key) where a workspace groups by it. " + KEY_WORDS,
        [
            target(per_key("elevenlabs_api_key_credits_used"), "", instant=True, table=True),
            target(per_key("elevenlabs_api_key_credits_limit"), "", "B", instant=True, table=True),
            target(KEY_SHARE, "", "C", instant=True, table=True),
            target(per_key("elevenlabs_api_key_disabled"), "", "D", instant=True, table=True),
        ],
        columns={
            "Value #A": "Credits used",
            "Value #B": "Limit",
            "Value #C": SHARE_COLUMN,
            "Value #D": "Disabled",
            "key_name": "Key",
            "key_id": "Key id",
            "service_account": "Service account",
            "workspace": "Workspace",
        },
        sort_by="Credits used",
        overrides=[
            share_column(),
            field_override(
                "Disabled",
                ("mappings", value_mappings({"0": ("no", "green"), "1": ("disabled", "red")})),
            ),
        ],
    )


def groups_table() -> Json:
    """Per group: credits used, its limit (or unlimited) and the share."""
    return table(
        "Groups: used and limit",
        "Per workspace group: the credits its members used this billing period "
        "(character_count), its usage limit (group_usage_limit; empty when it is "
        '"unlimited", which the Unlimited column says), and the share used. ' + GROUP_WORDS,
        [
            target(per_group("elevenlabs_group_credits_used"), "", instant=True, table=True),
            target(per_group("elevenlabs_group_credits_limit"), "", "B", instant=True, table=True),
            target(GROUP_SHARE, "", "C", instant=True, table=True),
            target(
                per_group("elevenlabs_group_credits_unlimited"), "", "D", instant=True, table=True
            ),
        ],
        columns={
            "Value #A": "Credits used",
            "Value #B": "Limit",
            "Value #C": SHARE_COLUMN,
            "Value #D": "Unlimited",
            "group": "Group",
            "group_id": "Group id",
            "workspace": "Workspace",
        },
        sort_by="Credits used",
        overrides=[
            share_column(),
            field_override(
                "Unlimited",
                ("mappings", value_mappings({"0": ("no", "text"), "1": ("unlimited", "blue")})),
            ),
        ],
    )
