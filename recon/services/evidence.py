"""An evidence pack exported: built (recon.selectors.evidence), in one format, and recorded.

The pack is one JSON document in a canonical form (sorted keys, no spaces); its
SHA-256 is the pack's checksum, the same in the JSON download (its body is exactly
those bytes), the CSV zip's manifest and the printable summary, and in the audit
trail's record of the export, so a copy can be checked against the trail. Export
permission on the topic (recon.access.topic_for_evidence: outsider 404, others 403
with the refusal in the audit trail); payload fields only with EVIDENCE_EXPORT_PAYLOADS
on and payload permission.
"""

import csv
import datetime as dt
import hashlib
import io
import json
import zipfile
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.template.loader import render_to_string

from config.errors import AppError
from recon import access
from recon.models import (
    Topic,
)
from recon.selectors.evidence import SCHEMA, evidence_pack
from recon.services.actions import operator_action_record

FORMATS = ("json", "csv", "html")


MAX_DAYS = 366


def pack_bytes(pack: dict) -> bytes:
    """The canonical form the checksum is taken over."""
    return json.dumps(pack, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def pack_checksum(pack: dict) -> str:
    return hashlib.sha256(pack_bytes(pack)).hexdigest()


def _cell(value: Any) -> str:
    text = (
        ""
        if value is None
        else (json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict | list) else str(value))
    )
    # A spreadsheet runs a cell that starts with one of these as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv(rows: list[dict], columns: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue().encode()


def pack_csv_zip(pack: dict, checksum: str) -> bytes:
    """One CSV per section, and a manifest with each file's SHA-256 and the pack's checksum."""
    history = [{"finding": f["id"], **h} for f in pack["findings"] for h in f["history"]]
    comments = [{"finding": f["id"], **c} for f in pack["findings"] for c in f["comments"]]
    legs = [
        {"leg": kind, **{k: v for k, v in leg.items() if k != "runs"}, "runs": len(leg["runs"])}
        for kind, leg in pack["legs"].items()
    ]
    runs = [{"leg": kind, **run} for kind, leg in pack["legs"].items() for run in leg["runs"]]
    files = {
        "windows.csv": _csv(pack["windows"], list(pack["windows"][0]) if pack["windows"] else ["id"]),
        "findings.csv": _csv(
            pack["findings"],
            [
                "id",
                "problem",
                "members",
                "created_at",
                "window",
                "uuid",
                "key",
                "category",
                "classification",
                "severity",
                "status",
                "owner",
                "team",
                "reason_code",
                "acknowledged_by",
                "comment",
                "detail",
            ],
        ),
        "finding_history.csv": _csv(history, ["finding", "at", "action", "from", "to", "by", "reason_code", "detail"]),
        "finding_comments.csv": _csv(comments, ["finding", "at", "by", "text"]),
        "replays.csv": _csv(pack["replays"], list(pack["replays"][0]) if pack["replays"] else ["id"]),
        "operator_actions.csv": _csv(pack["operator_actions"], ["at", "user", "action", "target", "outcome", "detail"]),
        "legs.csv": _csv(legs, sorted({k for leg in legs for k in leg}, key=lambda k: (k != "leg", k))),
        "runs.csv": _csv(runs, ["leg", "id", "started_at", "finished_at", "status", "trigger", "by", "report"]),
    }
    if "payloads" in pack:
        files["payloads.csv"] = _csv(pack["payloads"], ["uuid", "side", "at", "record"])
    manifest = {
        "schema": SCHEMA,
        "topic": pack["topic"],
        "range": pack["range"],
        "pack_sha256": checksum,
        "files": {name: hashlib.sha256(body).hexdigest() for name, body in files.items()},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in files.items():
            archive.writestr(name, body)
        archive.writestr("pack.json", pack_bytes(pack))
        archive.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
    return buffer.getvalue()


class Export:
    """One export of the pack: the body to send, its content type and file name, and the pack's checksum."""

    def __init__(self, body: bytes, content_type: str, filename: str, checksum: str):
        self.body, self.content_type, self.filename, self.checksum = body, content_type, filename, checksum


def evidence_export(*, topic: Topic, start: dt.datetime, end: dt.datetime, user, fmt: str, can_payload: bool) -> Export:
    """Build the pack in one format and record the export (who, what range, the checksum) in the audit trail.

    The caller checked export permission (recon.access.topic_for_evidence)."""
    if fmt not in FORMATS:
        raise AppError(f"format must be one of {', '.join(FORMATS)}", code="bad_format")
    if start >= end:
        raise AppError("start must be before end.", code="invalid_range")
    if end - start > dt.timedelta(days=MAX_DAYS):
        raise AppError(f"An evidence pack covers at most {MAX_DAYS} days.", code="range_too_long")
    with_payloads = settings.EVIDENCE_EXPORT_PAYLOADS and can_payload
    pack = evidence_pack(topic=topic, start=start, end=end, user=user, with_payloads=with_payloads)
    checksum = pack_checksum(pack)
    stem = f"evidence-{topic.name}-{start:%Y%m%d}-{end:%Y%m%d}"
    if fmt == "json":
        export = Export(pack_bytes(pack), "application/json", f"{stem}.json", checksum)
    elif fmt == "csv":
        export = Export(pack_csv_zip(pack, checksum), "application/zip", f"{stem}.zip", checksum)
    else:
        html = render_to_string("dashboard/evidence_summary.html", {"pack": pack, "checksum": checksum})
        export = Export(html.encode(), "text/html; charset=utf-8", f"{stem}.html", checksum)
    operator_action_record(
        user=user,
        action="evidence.export",
        topic=topic,
        target=f"topic:{topic.pk}",
        detail={
            "format": fmt,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "sha256": checksum,
            "payloads": with_payloads,
            "rows": {k: len(pack[k]) for k in ("windows", "findings", "replays", "operator_actions")},
        },
        outcome=f"exported: sha256 {checksum[:16]}",
    )
    return export


def topic_for_export(user, name: str) -> Topic:
    """The topic named, with export permission (outsider 404, others 403); a refusal goes in the audit trail."""
    topic = access.topic_for_view(user, Topic.objects.filter(name=name).first())
    try:
        return access.topic_for_evidence(user, topic)
    except PermissionDenied:
        operator_action_record(user=user, action="evidence.export", topic=topic, outcome="refused")
        raise
