"""Grafana's provisioning files: the Prometheus data source and the dashboard provider.

(How docker compose mounts them is pinned in test_compose.py.)
"""

from __future__ import annotations

import yaml
from dashboards_support import GRAFANA


def test_provisioned_datasource_is_the_default_prometheus() -> None:
    """Grafana provisions Prometheus (uid prometheus) at the compose service's address."""
    config = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )
    assert config["apiVersion"] == 1
    (datasource,) = config["datasources"]
    assert datasource["name"] == "Prometheus"
    assert datasource["uid"] == "prometheus"
    assert datasource["type"] == "prometheus"
    assert datasource["access"] == "proxy"
    assert datasource["url"] == "http://prometheus:9090"
    assert datasource["isDefault"] is True


def test_provisioned_dashboard_provider_reads_the_mounted_directory() -> None:
    """The file provider loads the dashboards from where compose mounts grafana/dashboards."""
    config = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "elevenlabs.yml").read_text(encoding="utf-8")
    )
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert provider.get("name")
