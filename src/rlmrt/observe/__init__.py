"""Consumers and views of the event stream: usage accounting, trajectory files, the
call tree, the run summary and the one-line description of an event. The fronts (CLI,
MCP, visualizer) only render what these give them."""
