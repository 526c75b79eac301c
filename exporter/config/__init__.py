"""Configuration, parsed once into frozen dataclasses.

Nothing else in the exporter reads raw YAML, dicts or ``os.environ``: everything it
needs arrives here, is validated here, and fails here with one line naming the key.
"""

from exporter.config.demo import DEMO_WORKSPACE, demo_config, demo_workspace
from exporter.config.load import load_config
from exporter.config.model import (
    DEFAULT_BASE_URL,
    DEFAULT_KEY_ENV,
    DEFAULT_MAX_VALUES,
    ENV_PREFIX,
    FILTER_OPERATIONS,
    GROUP_BY_VALUES,
    Config,
    ConfigError,
    KeySource,
    Secret,
    WorkspaceConfig,
)
from exporter.config.values import default_state_file, parse_duration, read_key_file

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_KEY_ENV",
    "DEFAULT_MAX_VALUES",
    "DEMO_WORKSPACE",
    "ENV_PREFIX",
    "FILTER_OPERATIONS",
    "GROUP_BY_VALUES",
    "Config",
    "ConfigError",
    "KeySource",
    "Secret",
    "WorkspaceConfig",
    "default_state_file",
    "demo_config",
    "demo_workspace",
    "load_config",
    "parse_duration",
    "read_key_file",
]
