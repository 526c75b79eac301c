"""One-off commands beside the exporter: report and backfill."""
