"""A plugin with a misspelt hook name: start-up must refuse it."""

from gateway import hookimpl


@hookimpl
def gateway_http_route(host):  # the hook is gateway_http_routes
    return []
