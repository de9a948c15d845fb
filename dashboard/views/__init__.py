"""The pages, one module per page family. Each view checks access, calls a selector (or one
service), renders. Every view needs a login; what a user sees is narrowed to their topics by
the selectors (recon.access), actions are refused by the services with 403, and the buttons
are hidden by the same recon.access checks."""
