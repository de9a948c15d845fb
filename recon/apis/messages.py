"""One message's drill-down in the API: ledger rows, deliveries, cache state, findings, rebalances."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recon.selectors.messages import message_timeline
from recon.serializers import MessageSerializer


class MessageApi(APIView):
    """One message's drill-down: ledger rows, deliveries, cache state, findings, rebalances."""

    @extend_schema(responses={200: MessageSerializer}, summary="Message drill-down by UUID")
    def get(self, request: Request, uuid) -> Response:
        timeline = message_timeline(user=request.user, uuid=uuid)
        context = {
            "request": request,
            "payload_topic_ids": {timeline.topic.pk} if timeline.can_view_payload else set(),
        }
        return Response(MessageSerializer(timeline, context=context).data)
