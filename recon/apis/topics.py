"""The topics API: the topics the caller may see, with what they may do on each."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins

from recon.apis.viewsets import RecordViewSet
from recon.selectors.topics import topics_visible
from recon.serializers import TopicSerializer


@extend_schema_view(list=extend_schema(summary="Topics you may see, with what you may do on each"))
class TopicViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, RecordViewSet):
    serializer_class = TopicSerializer
    lookup_field = "name"
    lookup_value_regex = r"[^/]+"  # Kafka topic names contain dots
    pagination_class = None

    def get_queryset(self):
        return topics_visible(self.request.user)
