"""Test stand-ins for external services (real sockets on 127.0.0.1, scripted behaviour)."""
