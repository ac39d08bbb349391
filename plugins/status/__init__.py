"""Built-in plugin: liveness at /healthz and Prometheus metrics at /metrics."""
