"""Implementations of the application's ports: SQLAlchemy, in-memory, clock."""
