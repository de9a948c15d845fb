"""The monitoring API (alerts, lag status, alert rules, silences) and /metrics for Prometheus.

Every list starts from what the caller may see (monitoring.access, recon.access): an outsider
gets 404, a viewer changing something 403. /metrics answers the scrape token (every topic)
or a user (the topics they may see)."""

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.auth import ThrottledTokenAuthentication
from monitoring import access as monitoring_access
from monitoring import selectors, services
from monitoring.lag_status import STATUSES
from monitoring.metrics import PipelineCollector
from monitoring.models import Alert, AlertRule, Silence
from recon import access
from recon.models import Finding, Topic


class AlertSerializer(serializers.ModelSerializer):
    rule = serializers.CharField(source="rule.name")
    topic = serializers.CharField(source="topic.name")
    acknowledged_by = serializers.CharField(source="acknowledged_by.username", default=None, allow_null=True)
    silenced_by = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

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
            "silenced_by",
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


# --- alert rules and silences -------------------------------------------------------------


class AlertRuleSerializer(serializers.ModelSerializer):
    topic = serializers.SlugRelatedField(
        slug_field="name",
        queryset=Topic.objects.all(),
        allow_null=True,
        required=False,
        help_text="Empty: every topic.",
    )
    categories = serializers.ListField(
        child=serializers.ChoiceField(choices=Finding.Category.choices), required=False, allow_empty=True
    )
    webhook_secret = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=200)
    has_webhook_secret = serializers.SerializerMethodField()

    class Meta:
        model = AlertRule
        fields = [
            "id",
            "name",
            "kind",
            "topic",
            "categories",
            "measure",
            "min_severity",
            "threshold",
            "window_minutes",
            "grace_minutes",
            "quiet_minutes",
            "email_to",
            "webhook_url",
            "webhook_format",
            "webhook_secret",
            "has_webhook_secret",
            "enabled",
            "updated_at",
        ]
        read_only_fields = ["updated_at"]

    def get_has_webhook_secret(self, rule: AlertRule) -> bool:
        return bool(rule.webhook_secret)

    def validate(self, attrs: dict) -> dict:
        url = attrs.get("webhook_url", getattr(self.instance, "webhook_url", ""))
        fmt = attrs.get("webhook_format", getattr(self.instance, "webhook_format", AlertRule.WebhookFormat.SIGNED))
        secret = attrs.get("webhook_secret", getattr(self.instance, "webhook_secret", ""))
        if url and fmt == AlertRule.WebhookFormat.SIGNED and not secret:
            raise serializers.ValidationError({"webhook_secret": "A signed webhook needs a secret."})
        return attrs


def _rule_saved(request: Request, body: AlertRuleSerializer, rule: AlertRule | None) -> AlertRule:
    body.is_valid(raise_exception=True)
    topic = body.validated_data.get("topic", rule.topic if rule else None)
    monitoring_access.scope_for_change(request.user, topic)
    target = rule or AlertRule()
    for name, value in body.validated_data.items():
        setattr(target, name, value)
    if "categories" in body.validated_data:
        target.category = ""  # the list says it all
    return services.alert_rule_save(rule=target, user=request.user)


class AlertRuleListCreateApi(APIView):
    @extend_schema(responses={200: AlertRuleSerializer(many=True)})
    def get(self, request: Request) -> Response:
        rules = monitoring_access.rules_visible(request.user).order_by("name")
        return Response(AlertRuleSerializer(rules, many=True).data)

    @extend_schema(request=AlertRuleSerializer, responses={201: AlertRuleSerializer})
    def post(self, request: Request) -> Response:
        rule = _rule_saved(request, AlertRuleSerializer(data=request.data), None)
        return Response(AlertRuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class AlertRuleDetailApi(APIView):
    def _rule(self, request: Request, rule_id: int) -> AlertRule:
        return monitoring_access.rule_for_view(request.user, AlertRule.objects.filter(pk=rule_id).first())

    @extend_schema(responses={200: AlertRuleSerializer})
    def get(self, request: Request, rule_id: int) -> Response:
        return Response(AlertRuleSerializer(self._rule(request, rule_id)).data)

    @extend_schema(request=AlertRuleSerializer, responses={200: AlertRuleSerializer})
    def patch(self, request: Request, rule_id: int) -> Response:
        rule = monitoring_access.rule_for_change(request.user, self._rule(request, rule_id))
        rule = _rule_saved(request, AlertRuleSerializer(rule, data=request.data, partial=True), rule)
        return Response(AlertRuleSerializer(rule).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, rule_id: int) -> Response:
        rule = monitoring_access.rule_for_change(request.user, self._rule(request, rule_id))
        services.alert_rule_delete(rule=rule, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RuleTestResultSerializer(serializers.Serializer):
    channel = serializers.CharField()
    target = serializers.CharField()
    outcome = serializers.CharField()


class AlertRuleTestApi(APIView):
    @extend_schema(request=None, responses={200: RuleTestResultSerializer(many=True)})
    def post(self, request: Request, rule_id: int) -> Response:
        rule = monitoring_access.rule_for_change(request.user, AlertRule.objects.filter(pk=rule_id).first())
        results = services.alert_rule_test(rule=rule, user=request.user)
        return Response([{"channel": c, "target": t, "outcome": o} for c, t, o in results])


class SilenceSerializer(serializers.ModelSerializer):
    topic = serializers.SlugRelatedField(
        slug_field="name", queryset=Topic.objects.all(), allow_null=True, required=False
    )
    rule = serializers.PrimaryKeyRelatedField(queryset=AlertRule.objects.all(), allow_null=True, required=False)
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True, allow_null=True)

    class Meta:
        model = Silence
        fields = ["id", "rule", "topic", "starts_at", "ends_at", "reason", "created_by", "created_at"]
        read_only_fields = ["created_at"]


class SilenceListCreateApi(APIView):
    @extend_schema(responses={200: SilenceSerializer(many=True)})
    def get(self, request: Request) -> Response:
        silences = monitoring_access.silences_visible(request.user).order_by("-starts_at")[:200]
        return Response(SilenceSerializer(silences, many=True).data)

    @extend_schema(request=SilenceSerializer, responses={201: SilenceSerializer})
    def post(self, request: Request) -> Response:
        body = SilenceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        rule = data.get("rule")
        if rule is not None:
            monitoring_access.rule_for_view(request.user, rule)
        topic = monitoring_access.scope_for_change(request.user, data.get("topic") or (rule.topic if rule else None))
        silence = services.silence_create(
            user=request.user,
            starts_at=data["starts_at"],
            ends_at=data["ends_at"],
            reason=data["reason"],
            rule=rule,
            topic=topic,
        )
        return Response(SilenceSerializer(silence).data, status=status.HTTP_201_CREATED)


class SilenceEndApi(APIView):
    @extend_schema(request=None, responses={200: SilenceSerializer})
    def post(self, request: Request, silence_id: int) -> Response:
        silence = monitoring_access.silence_for_change(request.user, Silence.objects.filter(pk=silence_id).first())
        return Response(SilenceSerializer(services.silence_end(silence=silence, user=request.user)).data)


# --- /metrics: for Prometheus (a text endpoint, not DRF) ------------------------------


def _scrape_user(request: HttpRequest):
    """Who scrapes: the scrape token ("token"), a user (session or API token), or None."""
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    # Bytes, not str: compare_digest refuses non-ASCII str (a 500 on a crafted header).
    expected = settings.METRICS_TOKEN.encode()
    if scheme == "Bearer" and expected and hmac.compare_digest(credential.encode("utf-8", "replace"), expected):
        return "token"
    if request.user.is_authenticated:
        return request.user
    if scheme == "Token" and credential:
        try:  # the API's token check: hashed knox tokens, expiry, failures throttled
            found = ThrottledTokenAuthentication().authenticate(request)
        except APIException:
            return None
        return found[0] if found else None
    return None


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics: every topic for the scrape token; for a user, the topics they
    may see (recon.access.topics_visible, the rule of every list)."""
    scraper = _scrape_user(request)
    if scraper is None:
        response = HttpResponse("authentication required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if request.method not in ("GET", "HEAD"):  # after the credentials: strangers learn nothing
        return HttpResponseNotAllowed(["GET", "HEAD"])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(None if scraper == "token" else access.topics_visible(scraper)))
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
