"""Example gateway plugin: a greeting over HTTP and over a tiny TCP line protocol."""

__version__ = "0.1.0"
