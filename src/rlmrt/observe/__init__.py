"""Consumers of the event stream: usage accounting, trajectory files."""
