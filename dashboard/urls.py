from django.urls import path

from dashboard import replay_views, run_views, views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("findings/", views.findings, name="findings"),
    path("findings/export.csv", views.findings_csv, name="findings-csv"),
    path("findings/<int:pk>/", views.finding_detail, name="finding"),
    path("findings/<int:pk>/acknowledge", views.finding_acknowledge, name="finding-acknowledge"),
    path("messages/", views.message_search, name="message-search"),
    path("messages/<uuid:uuid>/", views.message_detail, name="message"),
    path("windows/", views.windows, name="windows"),
    path("windows/<int:pk>/", views.window_detail, name="window"),
    path("loads/", views.loads, name="loads"),
    path("loads/start", views.load_start, name="load-start"),
    path("loads/<uuid:pk>/", views.load_detail, name="load"),
    path("rebalances/", views.rebalances, name="rebalances"),
    path("audit/", views.actions, name="actions"),
    path("replays/", replay_views.replays, name="replays"),
    path("replays/start", replay_views.replay_start, name="replay-start"),
    path("replays/reprocess", replay_views.reprocess, name="reprocess"),
    path("replays/<uuid:pk>/", replay_views.replay_detail, name="replay"),
    path("runs/", run_views.runs, name="runs"),
    path("runs/request", run_views.run_request, name="run-request"),
    path("runs/<uuid:pk>/", run_views.run_detail, name="run"),
    path("assets/plotly.min.js", views.plotly_js, name="plotly-js"),
]
