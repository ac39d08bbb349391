"""A plugin declaring a section the host already owns."""

from dataclasses import dataclass

from gateway import hookimpl


@dataclass
class Http:
    listen: list[str]


@hookimpl
def gateway_config_schema():
    return {"http": Http}
