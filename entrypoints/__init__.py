"""The ways in: the HTTP API, the command line, and the container that wires them."""
