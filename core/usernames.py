"""One spelling of a username, for every place that compares one.

"OtTo", "otto " and "otto" in full-width letters are the same person: the login form, the
lockout's key (django-axes), the local and the directory lookups and the stored
username all go through `username_normalise`, so a lockout of one spelling is a
lockout of all and no second account can be made under another spelling.
NFKC folds compatibility forms (full-width letters, ligatures), casefold folds case
(more than lower(): "Straße" and "STRASSE" meet), and NFKC again because case
folding can leave a string that is not in NFKC.
"""

import unicodedata


def username_normalise(raw: str) -> str:
    text = unicodedata.normalize("NFKC", str(raw)).strip()
    return unicodedata.normalize("NFKC", text.casefold())
