"""Reads of the pages that only the pages make: the overview's figures, the message search, the
consumer lag totals (cached). The record's own reads, shared with its API, are recon.selectors."""
