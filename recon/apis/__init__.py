"""The record's JSON API, mounted at /api/ (recon.urls): topics, windows, findings and their
lifecycle, rebalances, operator actions, one message's timeline, evidence packs, runs. One
module per thing; their list filters are recon.filters, their serializers recon.serializers."""
