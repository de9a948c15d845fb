from django.urls import path

from dashboard import break_views, evidence_views, replay_views, run_views, views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("findings/", views.findings, name="findings"),
    path("findings/export.csv", views.findings_csv, name="findings-csv"),
    path("findings/<int:pk>/", views.finding_detail, name="finding"),
    path("findings/<int:pk>/acknowledge", views.finding_acknowledge, name="finding-acknowledge"),
    path("findings/<int:pk>/assign", break_views.finding_assign, name="finding-assign"),
    path("findings/<int:pk>/investigate", break_views.finding_investigate, name="finding-investigate"),
    path("findings/<int:pk>/fix", break_views.finding_fix, name="finding-fix"),
    path("findings/<int:pk>/accept", break_views.finding_accept, name="finding-accept"),
    path("findings/<int:pk>/reopen", break_views.finding_reopen, name="finding-reopen"),
    path("findings/<int:pk>/comment", break_views.finding_comment, name="finding-comment"),
    path("breaks/mine/", break_views.my_breaks, name="my-breaks"),
    path("evidence/", evidence_views.evidence, name="evidence"),
    path("evidence/export", evidence_views.evidence_download, name="evidence-download"),
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
    path("replays/dry-run", replay_views.replay_dry_run, name="replay-dry-run"),
    path("replays/<uuid:pk>/", replay_views.replay_detail, name="replay"),
    path("replays/<uuid:pk>/approve", replay_views.replay_approve_view, name="replay-approve"),
    path("replays/<uuid:pk>/reject", replay_views.replay_reject_view, name="replay-reject"),
    path("runs/", run_views.runs, name="runs"),
    path("runs/request", run_views.run_request, name="run-request"),
    path("runs/<uuid:pk>/", run_views.run_detail, name="run"),
    path("assets/plotly.min.js", views.plotly_js, name="plotly-js"),
    path("assets/plotly.css", views.plotly_css, name="plotly-css"),
]
