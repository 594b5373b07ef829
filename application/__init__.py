"""Ports (what the use cases need from the world) and the use-case services."""
