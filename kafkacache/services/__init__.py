"""Writes of the feed: loads, change events and the change feed, publishing, the feed's Kafka topics,
re-encryption and relayout of the cache, the partition leaders' watch."""
