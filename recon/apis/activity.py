"""What the feed and people did, in the API: the rebalances of the visible topics' consumer groups,
and the operator action trail."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins

from recon.apis.viewsets import RecordViewSet, cursor_pagination, filter_parameters
from recon.filters import ActionFilterForm, RebalanceFilterForm
from recon.selectors.activity import actions_filtered, rebalances_filtered
from recon.serializers import OperatorActionSerializer, RebalanceSerializer


@extend_schema_view(list=extend_schema(parameters=filter_parameters(RebalanceFilterForm)))
class RebalanceViewSet(mixins.ListModelMixin, RecordViewSet):
    serializer_class = RebalanceSerializer
    pagination_class = cursor_pagination("at")
    filter_form = RebalanceFilterForm

    def get_queryset(self):
        return rebalances_filtered(user=self.request.user, **self.filters())


@extend_schema_view(list=extend_schema(parameters=filter_parameters(ActionFilterForm)))
class OperatorActionViewSet(mixins.ListModelMixin, RecordViewSet):
    serializer_class = OperatorActionSerializer
    pagination_class = cursor_pagination("at")
    filter_form = ActionFilterForm

    def get_queryset(self):
        return actions_filtered(user=self.request.user, **self.filters())
