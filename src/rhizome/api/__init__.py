"""The agents' HTTP API: health checks, Prometheus metrics (docs/api.md)."""
