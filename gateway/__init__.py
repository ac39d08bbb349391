"""The groupware gateway host: plugin manager, configuration, serving.

Plugins import :data:`hookimpl` from here and nothing else from the host's
internals that they do not need.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("gateway")
"""Marker for plugin hook implementations: ``@hookimpl def gateway_...``."""

__all__ = ["__version__", "hookimpl"]
