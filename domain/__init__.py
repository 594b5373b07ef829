"""Entities, value objects and domain errors. Standard library only."""
