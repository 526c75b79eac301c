"""The ElevenLabs endpoints the exporter reads: one place for the paths.

Shared by the client and by the simulator, which answers on the same paths.
"""

USAGE_PATH = "/v1/workspace/analytics/query/usage-by-product-over-time"
COST_USAGE_PATH = "/v1/workspace/analytics/usage"
SUBSCRIPTION_PATH = "/v1/user/subscription"
CHARACTER_STATS_PATH = "/v1/usage/character-stats"
USER_PATH = "/v1/user"
SERVICE_ACCOUNTS_PATH = "/v1/service-accounts"
# One service account's keys: SERVICE_ACCOUNT_KEYS_PATH.format(service_account_user_id=...)
SERVICE_ACCOUNT_KEYS_PATH = "/v1/service-accounts/{service_account_user_id}/api-keys"
WORKSPACE_GROUPS_PATH = "/v1/workspace/groups"
