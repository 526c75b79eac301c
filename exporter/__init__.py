"""Prometheus exporter for ElevenLabs credit usage."""

__version__ = "0.1.0"
