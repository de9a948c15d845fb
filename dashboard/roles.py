"""The three roles of the ops team, as Django groups.

viewer: reads pages and the API. operator: also replays, reprocesses, starts
batch loads and reconciles, acknowledges. admin: also edits rules, topics, users.
Which topics a person may see or act on is decided per object (django-guardian).
"""

VIEWER = "viewer"
OPERATOR = "operator"
ADMIN = "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)
