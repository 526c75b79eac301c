"""From snapshots to the exposition: one collector per source, telemetry, rendering."""
