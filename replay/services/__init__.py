"""Writes of a replay: the request, four-eyes approval, the run and its progress, what it resolves."""
