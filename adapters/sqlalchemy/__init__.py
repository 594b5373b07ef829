"""The SQL implementation of the ports: one code path for SQLite and PostgreSQL."""
