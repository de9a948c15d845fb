from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring import selectors, services
from monitoring.lag_status import STATUSES
from monitoring.models import Alert
from recon import access


class AlertSerializer(serializers.ModelSerializer):
    rule = serializers.CharField(source="rule.name")
    topic = serializers.CharField(source="topic.name")
    acknowledged_by = serializers.CharField(source="acknowledged_by.username", default=None, allow_null=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "rule",
            "topic",
            "status",
            "value",
            "evaluations",
            "first_at",
            "last_at",
            "last_notified_at",
            "resolved_at",
            "acknowledged_by",
            "acknowledged_at",
            "comment",
        ]


class AcknowledgeSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=2000, allow_blank=True, default="")


class AlertListApi(ListAPIView):
    serializer_class = AlertSerializer

    def get_queryset(self):
        status = self.request.query_params.get("status")
        return selectors.alerts_visible(self.request.user, status=status if status in Alert.Status.values else None)


class AlertAcknowledgeApi(APIView):
    @extend_schema(request=AcknowledgeSerializer, responses=AlertSerializer)
    def post(self, request: Request, alert_id: int) -> Response:
        alert = selectors.alerts_visible(request.user).filter(pk=alert_id).first()
        topic = access.topic_for_operate(request.user, alert.topic if alert else None)
        assert alert is not None and alert.topic == topic
        body = AcknowledgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        alert = services.alert_acknowledge(alert=alert, user=request.user, comment=body.validated_data["comment"])
        return Response(AlertSerializer(alert).data)


class LagPartitionSerializer(serializers.Serializer):
    partition = serializers.IntegerField()
    status = serializers.CharField(source="judgement.status")
    reason = serializers.CharField(source="judgement.reason")
    lag = serializers.IntegerField(source="judgement.lag", allow_null=True)
    samples = serializers.IntegerField(source="judgement.samples")
    committed = serializers.IntegerField(allow_null=True)
    end = serializers.IntegerField(allow_null=True)


class LagStatusSerializer(serializers.Serializer):
    topic = serializers.CharField(source="topic.name")
    group = serializers.CharField()
    status = serializers.ChoiceField(choices=list(STATUSES), help_text="The worst of the partitions'")
    partitions = LagPartitionSerializer(many=True)


class LagStatusApi(APIView):
    @extend_schema(
        responses={200: LagStatusSerializer(many=True)},
        summary="Lag status per group and partition: ok, warning (growing), stalled, stopped, rewind (or unknown)",
    )
    def get(self, request: Request) -> Response:
        statuses = selectors.lag_statuses(topics=access.topics_visible(request.user), now=timezone.now())
        return Response(LagStatusSerializer(statuses, many=True).data)
