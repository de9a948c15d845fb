"""The three roles of the ops team, as Django groups.

viewer: reads pages and the API. operator: also replays, reprocesses, starts
batch loads and reconciles, acknowledges. admin: also edits rules, topics, users.
Which topics a person may see or act on is decided per object (django-guardian).
"""

VIEWER = "viewer"
OPERATOR = "operator"
ADMIN = "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)

# A person's one role on one topic (recon.access.ROLE_PERMS says what each holds), as the
# topic page words it: people choose a role, never a permission.
TOPIC_ROLE_LABELS = {
    "viewer": "Viewer: sees the topic, its findings and windows",
    "auditor": "Auditor: sees the topic and downloads its evidence pack",
    "operator": "Operator: also replays, reprocesses, loads, reconciles and works findings",
    "admin": "Admin: an operator who also gives people their roles here",
}
