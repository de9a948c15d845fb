"""What a scan of the publish ledger says of a window's seconds: the figures the writer keeps
(Window.published_seconds, published_peak) are checked against it."""

from django.db import connection

from recon.models import Window

_SCAN = """
SELECT extract(epoch FROM date_trunc('second', published_at) - %(start)s)::int, count(*)
FROM recon_publishedmessage
WHERE topic_id = %(topic)s AND published_at >= %(start)s AND published_at < %(end)s
GROUP BY 1
"""


def seconds_scanned(window: Window) -> list[int]:
    """The window's messages per second as the ledger rows count them, up to its last busy second."""
    with connection.cursor() as cursor:
        cursor.execute(_SCAN, {"topic": window.topic_id, "start": window.start, "end": window.end})
        counts = dict(cursor.fetchall())
    dense = [0] * (max(counts) + 1 if counts else 0)
    for i, n in counts.items():
        dense[i] = n
    return dense


def figures_match_ledger(topic) -> list[Window]:
    """Every window of the topic: its kept per-second counts and peak equal the ledger's (asserted)."""
    windows = list(Window.objects.filter(topic=topic).order_by("start"))
    for window in windows:
        scanned = seconds_scanned(window)
        assert window.published_seconds == scanned, window
        assert window.published_peak == max(scanned, default=0), window
    return windows
