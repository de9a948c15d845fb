"""The windows API: the windows of the topics the caller may see, by the pages' filters."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins

from recon.apis.viewsets import RecordViewSet, cursor_pagination, filter_parameters
from recon.filters import WindowFilterForm
from recon.selectors.windows import windows_filtered
from recon.serializers import WindowSerializer


@extend_schema_view(list=extend_schema(parameters=filter_parameters(WindowFilterForm)))
class WindowViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, RecordViewSet):
    serializer_class = WindowSerializer
    pagination_class = cursor_pagination("start")
    filter_form = WindowFilterForm

    def get_queryset(self):
        if self.action == "list":
            return windows_filtered(user=self.request.user, **self.filters())
        return windows_filtered(user=self.request.user)
