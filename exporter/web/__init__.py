"""HTTP serving: /metrics and the health endpoints, TLS and basic auth."""
