"""On-demand reconciliation API (subscriber side): POST a run, read runs back.

POST api/recon/runs {topic, start, end} queues a reconcile of the topic's windows
over the range and answers 202 with the run (status "queued") and its status URL;
a worker runs it (recon.services.runs) and the run's report, progress and status are read
back from GET api/recon/runs/<id>. kind "cache" (the cache leg) and
"validation" (business rules on cached data) take a range or a load instead; a
cache run with neither checks the whole topic against its system of record.
Acting needs operate permission on the topic, reading needs view permission
(recon.access); every run asked for is recorded as an operator action.
"""

from django.db import transaction
from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import AppError
from config.openapi import paginated
from recon import access
from recon.models import Load, ReconRun, Topic
from recon.selectors.runs import runs_visible
from recon.services.actions import operator_action_record
from recon.services.runs import run_queue


class RunCreateSerializer(serializers.Serializer):
    topic = serializers.CharField(help_text="Topic name (or id).")
    kind = serializers.ChoiceField(choices=ReconRun.Kind.choices, default=ReconRun.Kind.TRANSPORT)
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)
    load = serializers.UUIDField(required=False, help_text="cache and validation runs: check one bulk load.")
    method = serializers.ChoiceField(
        choices=["digest", "keys"],
        required=False,
        help_text="a whole-topic cache run against the SQL source: by bucket digests, or every key (default:"
        " CACHE_LEG_METHOD)",
    )

    def validate(self, attrs: dict) -> dict:
        has_range = "start" in attrs and "end" in attrs
        if attrs["kind"] == ReconRun.Kind.TRANSPORT and not has_range:
            raise serializers.ValidationError("A reconcile run needs start and end.")
        if not has_range and "load" not in attrs and attrs["kind"] != ReconRun.Kind.CACHE:
            raise serializers.ValidationError("Give start and end, or a load.")
        if "method" in attrs and (attrs["kind"] != ReconRun.Kind.CACHE or has_range or "load" in attrs):
            raise serializers.ValidationError({"method": "only a whole-topic cache run has a method."})
        if has_range and attrs["start"] >= attrs["end"]:
            raise serializers.ValidationError({"end": "end must be after start."})
        return attrs


class RunSerializer(serializers.ModelSerializer):
    topic = serializers.CharField(source="topic.name")
    requested_by = serializers.CharField(source="requested_by.username", default=None, allow_null=True)
    status_url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    def get_status_url(self, run: ReconRun) -> str:
        return reverse("api-recon-run", args=[run.pk])

    def get_page_url(self, run: ReconRun) -> str:
        return reverse("dashboard:run", args=[run.pk])

    class Meta:
        model = ReconRun
        fields = [
            "id",
            "kind",
            "topic",
            "load",
            "range_start",
            "range_end",
            "trigger",
            "requested_by",
            "status",
            "total",
            "processed",
            "replay",
            "started_at",
            "finished_at",
            "status_url",
            "page_url",
            "report",
        ]


def _topic(value: str) -> Topic | None:
    found = Topic.objects.filter(name=value).first()
    if found is None and value.isdigit():
        found = Topic.objects.filter(pk=int(value)).first()
    return found


_ACTIONS = {
    ReconRun.Kind.TRANSPORT: "reconcile",
    ReconRun.Kind.CACHE: "cache-check",
    ReconRun.Kind.VALIDATION: "validate",
}


class RunListCreateApi(APIView):
    @extend_schema(request=RunCreateSerializer, responses={202: RunSerializer})
    def post(self, request: Request) -> Response:
        body = RunCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        topic = access.topic_for_operate(request.user, _topic(data["topic"]))
        load = None
        if "load" in data:
            load = Load.objects.filter(pk=data["load"], topic=topic).first()
            if load is None:
                raise Http404("No such load on this topic.")
        kind = data["kind"]
        detail = {
            "kind": kind,
            "start": data.get("start"),
            "end": data.get("end"),
            "load": data.get("load"),
            "method": data.get("method"),
        }
        detail = {k: str(v) for k, v in detail.items() if v is not None}
        try:
            with transaction.atomic():
                run = run_queue(
                    kind=kind,
                    topic=topic,
                    start=data.get("start"),
                    end=data.get("end"),
                    load=load,
                    trigger="api",
                    requested_by=request.user,
                    params={"method": data["method"]} if "method" in data else None,
                )
        except AppError as exc:
            operator_action_record(
                user=request.user, action=_ACTIONS[kind], topic=topic, detail=detail, outcome=f"refused: {exc}"[:255]
            )
            raise
        operator_action_record(
            user=request.user,
            action=_ACTIONS[kind],
            topic=topic,
            target=f"run:{run.pk}",
            detail=detail,
            outcome="queued",
        )
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="recon_runs_list",
        responses={200: paginated(RunSerializer, "PaginatedRunList")},
        parameters=[OpenApiParameter("topic", str), OpenApiParameter("kind", str, enum=ReconRun.Kind.values)],
    )
    def get(self, request: Request) -> Response:
        runs = runs_visible(access.topics_visible(request.user))
        if request.query_params.get("topic"):
            runs = runs.filter(topic__name=request.query_params["topic"])
        if request.query_params.get("kind"):
            runs = runs.filter(kind=request.query_params["kind"])
        paginator = generics.GenericAPIView.pagination_class()
        assert paginator is not None
        page = paginator.paginate_queryset(runs, request)
        return paginator.get_paginated_response(RunSerializer(page, many=True).data)


class RunDetailApi(APIView):
    @extend_schema(responses={200: RunSerializer})
    def get(self, request: Request, run_id) -> Response:
        run = ReconRun.objects.select_related("topic", "requested_by").filter(pk=run_id).first()
        access.topic_for_view(request.user, run.topic if run else None)
        return Response(RunSerializer(run).data)
