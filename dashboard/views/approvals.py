"""The approvals inbox: every four-eyes request waiting for an approval the user may give
(replays and reprocesses: replay.selectors.replays_awaiting), oldest first, with approve and
reject a click away. The buttons post to the replay page's own approve and reject, which
return here (replay.services.approval decides, records, and refuses one's own request)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard.views.replays import reasons_masked
from replay.selectors import replays_awaiting

INBOX_SHOWN = 200


@login_required
@require_GET
def approvals(request: HttpRequest) -> HttpResponse:
    rows = list(replays_awaiting(request.user)[: INBOX_SHOWN + 1])
    reasons_masked(request, rows)
    return render(
        request,
        "dashboard/approvals.html",
        {"rows": rows[:INBOX_SHOWN], "more": len(rows) > INBOX_SHOWN},
    )
