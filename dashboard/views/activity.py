"""What the feed and people did: the rebalances of the consumer groups, and the audit trail
(operator actions), each within the topics the user may see."""

import json

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.masking import mask_sensitive
from dashboard.views.common import filtered_page, payload_topic_ids, query_without_cursor
from recon import access
from recon.filters import ActionFilterForm, RebalanceFilterForm
from recon.selectors.activity import actions_filtered, rebalances_filtered


@login_required
@require_GET
def rebalances(request: HttpRequest) -> HttpResponse:
    form, page = filtered_page(request, RebalanceFilterForm, rebalances_filtered, time_field="at")
    if page is not None:
        for event in page.rows:
            event.partitions = access.partitions_visible(request.user, event.partitions)
    return render(
        request, "dashboard/rebalances.html", {"form": form, "page": page, "query": query_without_cursor(request)}
    )


@login_required
@require_GET
def actions(request: HttpRequest) -> HttpResponse:
    form, page = filtered_page(request, ActionFilterForm, actions_filtered, time_field="at")
    if page is not None:
        payload = payload_topic_ids(request)
        for action in page.rows:
            detail = action.detail if action.topic_id in payload else mask_sensitive(action.detail)
            action.detail_text = json.dumps(detail, sort_keys=True, default=str, ensure_ascii=False) if detail else ""
    return render(
        request, "dashboard/actions.html", {"form": form, "page": page, "query": query_without_cursor(request)}
    )
