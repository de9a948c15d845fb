from django.urls import path

from kafkacache import apis

urlpatterns = [
    path("loads", apis.LoadsApi.as_view(), name="api-loads"),
    path("loads/<uuid:load_id>", apis.LoadApi.as_view(), name="api-load"),
    path("changes", apis.ChangesApi.as_view(), name="api-changes"),
    path("changes/<uuid:message_uuid>", apis.ChangeApi.as_view(), name="api-change"),
    path("cache/<str:retrieval_key>", apis.CacheApi.as_view(), name="api-cache"),
]
