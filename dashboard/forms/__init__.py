"""Forms of the pages, by page family (the list filters they share with the API: recon.filters)."""
