"""The windows pages: the list, and one window with its figures and findings."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard import wording
from dashboard.paging import keyset_page
from dashboard.views.common import PAGE_SIZE, filtered_page, query_without_cursor
from recon import access
from recon.filters import WindowFilterForm
from recon.selectors.findings import findings_filtered
from recon.selectors.windows import window_visible, windows_filtered


@login_required
@require_GET
def windows(request: HttpRequest) -> HttpResponse:
    form, page = filtered_page(request, WindowFilterForm, windows_filtered, time_field="start")
    return render(
        request, "dashboard/windows.html", {"form": form, "page": page, "query": query_without_cursor(request)}
    )


@login_required
@require_GET
def window_detail(request: HttpRequest, pk: int) -> HttpResponse:
    window = window_visible(request.user, pk=pk)
    page = keyset_page(findings_filtered(user=request.user, window=window), time_field="created_at", size=PAGE_SIZE)
    context = {
        "window": window,
        "page": page,
        "summary": wording.window_summary_items(window.summary),
        "can_operate": access.can_operate(request.user, window.topic),
    }
    return render(request, "dashboard/window_detail.html", context)
