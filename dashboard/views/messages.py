"""The message pages: the search box (by UUID, load id, record key or client id, partition/offset)
and one message's timeline."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from dashboard.forms.messages import MessageSearchForm
from dashboard.selectors.messages import message_search as message_search_read
from recon.selectors.messages import message_timeline


@login_required
@require_GET
def message_search(request: HttpRequest) -> HttpResponse:
    """One box: a message UUID, a load id, a record key or client id, or partition/offset."""
    form = MessageSearchForm(request.GET or None, user=request.user)
    result = None
    if form.is_valid():
        result = message_search_read(
            user=request.user, query=form.cleaned_data["q"], topic=form.cleaned_data.get("topic")
        )
        if result.exact is not None:
            return redirect("dashboard:load" if result.kind == "load" else "dashboard:message", result.exact)
    return render(request, "dashboard/message_search.html", {"form": form, "result": result})


@login_required
@require_GET
def message_detail(request: HttpRequest, uuid) -> HttpResponse:
    timeline = message_timeline(user=request.user, uuid=uuid)
    return render(request, "dashboard/message_detail.html", {"t": timeline})
