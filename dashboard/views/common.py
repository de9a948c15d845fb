"""What the page views share: the page size, one keyset page of a list filter, the query string
without its cursor, and the `next` URL a post returns to (on this site only)."""

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from dashboard.paging import Page, keyset_page
from recon import access

PAGE_SIZE = 50


def filtered_page(request: HttpRequest, form_class, selector, *, time_field: str) -> tuple:
    """A list page's filter form and, when it is valid, one keyset page of the selector's rows."""
    form = form_class(request.GET, user=request.user)
    page: Page | None = None
    if form.is_valid():
        qs = selector(user=request.user, **form.filters())
        page = keyset_page(qs, time_field=time_field, cursor=form.cleaned_data["cursor"], size=PAGE_SIZE, count=False)
    return form, page


def query_without_cursor(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("cursor", None)
    return query.urlencode()


def safe_next(request: HttpRequest, default: str) -> str:
    """The posted `next` URL when it is one of this site's, else `default`."""
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return default


def payload_topic_ids(request: HttpRequest) -> set[int]:
    """The topics whose payloads (and masked fields) the user sees in the clear."""
    return set(access.topics_payload(request.user).values_list("pk", flat=True))
