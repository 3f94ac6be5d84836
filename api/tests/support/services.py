"""Real services on free loopback ports, shared with bench/ through app.localdb."""

from app.localdb import MotoServer, free_port, port_open

__all__ = ["MotoServer", "free_port", "port_open"]
