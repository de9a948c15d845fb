"""DRF endpoints of the feed: start and follow loads, publish changes, read a load back.

Permissions come from recon.access only: view for GETs, operate for POSTs, and
payload permission to see decrypted numbers (everyone else gets them masked).
"""

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import NotFound
from config.openapi import paginated
from kafkacache import selectors
from kafkacache.serializers import (
    CacheRecordsSerializer,
    ChangeCreateSerializer,
    ChangeSerializer,
    ChangeStatusSerializer,
    LoadCreateSerializer,
    LoadSerializer,
    LoadStartedSerializer,
)
from kafkacache.services import change_feed, loads
from recon import access
from recon.access import can_view_payload, topic_for_operate, topic_for_view, topics_payload
from recon.models import Topic
from recon.services.feed import feed_topics_ensure


def _topic_named(name: str) -> Topic | None:
    return Topic.objects.filter(name=name).first()


class LoadsApi(APIView):
    """GET: loads on the topics you may see. POST: start a bulk load (202 + retrieval key)."""

    @extend_schema(operation_id="loads_list", responses={200: paginated(LoadSerializer, "PaginatedLoadList")})
    def get(self, request: Request) -> Response:
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(selectors.loads_visible(request.user), request, view=self)
        context = {"payload_topics": set(access.topics_payload(request.user).values_list("pk", flat=True))}
        return paginator.get_paginated_response(LoadSerializer(page, many=True, context=context).data)

    @extend_schema(request=LoadCreateSerializer, responses={202: LoadStartedSerializer})
    def post(self, request: Request) -> Response:
        body = LoadCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if not data["topic"]:
            feed_topics_ensure()
        topic = topic_for_operate(request.user, _topic_named(data["topic"] or settings.KAFKA_TOPIC_BULK))
        load = loads.load_start(
            topic=topic, source=data["source"], client_ids=data["client_ids"], requested_by=request.user
        )
        return Response(
            {"id": load.id, "retrieval_key": load.retrieval_key, "status_url": LoadSerializer().get_status_url(load)},
            status=status.HTTP_202_ACCEPTED,
        )


class LoadApi(APIView):
    """State and progress of one load."""

    @extend_schema(responses={200: LoadSerializer})
    def get(self, request: Request, load_id) -> Response:
        load = selectors.load_get(load_id)
        if load is None:
            raise NotFound("No such load.")
        try:
            topic_for_view(request.user, load.topic)
        except Http404:
            raise NotFound("No such load.") from None
        context = {"payload_topics": {load.topic_id} if access.can_view_payload(request.user, load.topic) else set()}
        return Response(LoadSerializer(load, context=context).data)


class ChangesApi(APIView):
    """Publish one change event (add / update / delete) to the change topic.

    202: published, not yet applied; its status URL says what the cache did once the feed
    consumed it (stored, deleted, refused-older, ...). A version beyond the source's bound
    is a 400 naming the bound; without a version, one is drawn from the source's sequence."""

    @extend_schema(request=ChangeCreateSerializer, responses={202: ChangeSerializer})
    def post(self, request: Request) -> Response:
        body = ChangeCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        feed_topics_ensure()
        topic = topic_for_operate(request.user, _topic_named(settings.KAFKA_TOPIC_CHANGE))
        published = change_feed.change_publish(
            topic=topic,
            event=data["event"],
            key=data["key"],
            record=data["record"],
            old_key=data["old_key"],
            version=data["version"],
            source="api",
            requested_by=request.user,
        )
        return Response(ChangeSerializer(published).data, status=status.HTTP_202_ACCEPTED)


class ChangeApi(APIView):
    """What became of one change: published, then what the cache did with it."""

    @extend_schema(responses={200: ChangeStatusSerializer})
    def get(self, request: Request, message_uuid) -> Response:
        found = selectors.change_status(message_uuid)
        if found is None:
            raise NotFound("No such change.")
        try:
            topic_for_view(request.user, found["topic"])
        except Http404:
            raise NotFound("No such change.") from None
        return Response(ChangeStatusSerializer({**found, "topic": found["topic"].name}).data)


class CacheApi(APIView):
    """A load's records, read back from Redis by its retrieval key."""

    @extend_schema(
        responses={200: CacheRecordsSerializer},
        parameters=[OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
    )
    def get(self, request: Request, retrieval_key: str) -> Response:
        load = selectors.load_by_retrieval_key(retrieval_key)
        if load is None:
            raise NotFound("No such retrieval key.")
        try:
            topic = topic_for_view(request.user, load.topic)
        except Http404:
            raise NotFound("No such retrieval key.") from None
        paginator = LimitOffsetPagination()
        limit = min(paginator.get_limit(request) or 100, 1000)
        offset = paginator.get_offset(request)
        decrypt = can_view_payload(request.user, topic)
        payload_topics = set(topics_payload(request.user).values_list("name", flat=True))
        count, items = selectors.load_records(load=load, payload_topics=payload_topics, offset=offset, limit=limit)
        return Response(
            {
                "load": str(load.id),
                "status": load.status,
                "count": count,
                "offset": offset,
                "limit": limit,
                "decrypted": decrypt,
                "results": items,
            }
        )
