"""Strava's push subscription receiver: validate the subscription, store events, answer at once.

Strava (developers.strava.com, "Webhook Events API") validates a callback URL with
`GET ?hub.mode=subscribe&hub.challenge=X&hub.verify_token=T` and expects `{"hub.challenge": X}`
within two seconds; it then POSTs one JSON event per change (`object_type` activity|athlete,
`object_id`, `aspect_type` create|update|delete, `owner_id`, `subscription_id`, `event_time`,
`updates`) and wants a 200 within two seconds. The receiver stores each event durably
(`strava_webhook_events`, a redelivery stored once) before answering; the sensor
`strava_webhook_events` turns stored events into syncs, deletions and deauthorizations.
A malformed or forged event is refused (400/403) and changes nothing.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sync_assets.storage import Store

log = logging.getLogger(__name__)
MAX_EVENT_BYTES = 64 * 1024
PATH = "/webhook"


class WebhookEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    object_type: Literal["activity", "athlete"]
    object_id: int = Field(gt=0)
    aspect_type: Literal["create", "update", "delete"]
    owner_id: int = Field(gt=0)
    subscription_id: int | None = None
    event_time: int = Field(gt=0)
    updates: dict[str, Any] = Field(default_factory=dict)


def is_deauthorization(event: WebhookEvent | dict[str, Any]) -> bool:
    """An athlete update with `authorized: "false"`: the athlete revoked the app."""
    data = event.model_dump() if isinstance(event, WebhookEvent) else event
    return (
        data["object_type"] == "athlete"
        and str((data.get("updates") or {}).get("authorized", "")).lower() == "false"
    )


class WebhookReceiver:
    """The receiver's logic, apart from HTTP: easy to mount in any web framework."""

    def __init__(self, store: Store, verify_token: str, subscription_id: int | None = None) -> None:
        if not verify_token:
            raise ValueError("a webhook receiver needs STRAVA_WEBHOOK_VERIFY_TOKEN")
        self.store = store
        self._verify_token = verify_token
        self.subscription_id = subscription_id

    def challenge(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        token = query.get("hub.verify_token", "")
        if query.get("hub.mode") != "subscribe" or "hub.challenge" not in query:
            return 400, {"error": "not a subscription validation request"}
        if not hmac.compare_digest(token.encode(), self._verify_token.encode()):
            return 403, {"error": "verify token mismatch"}
        return 200, {"hub.challenge": query["hub.challenge"]}

    def event(self, body: bytes) -> tuple[int, dict[str, Any]]:
        if len(body) > MAX_EVENT_BYTES:
            return 413, {"error": "event too large"}
        try:
            event = WebhookEvent.model_validate(json.loads(body))
        except (ValueError, ValidationError) as exc:
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else "not JSON"
            return 400, {"error": f"malformed event: {reason}"}
        if self.subscription_id is not None and event.subscription_id != self.subscription_id:
            return 403, {"error": "unknown subscription"}
        event_id = self.store.record_webhook_event(event.model_dump())
        return 200, {"stored": event_id is not None}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # query strings hold the verify token: nothing of the request line is logged

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        url = urlsplit(self.path)
        if url.path != PATH:
            return self._answer(404, {"error": "not found"})
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        self._answer(*self.server.receiver.challenge(query))

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        if urlsplit(self.path).path != PATH:
            return self._answer(404, {"error": "not found"})
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_EVENT_BYTES:
            self.close_connection = True
            return self._answer(413 if length > 0 else 400, {"error": "bad Content-Length"})
        try:
            status, body = self.server.receiver.event(self.rfile.read(length))
        except Exception as exc:  # the database is down: Strava retries a non-200
            log.warning("could not store a webhook event: %s", type(exc).__name__)
            status, body = 503, {"error": "try again"}
        self._answer(status, body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        super().__init__(address, _Handler)


class WebhookServer:
    """The receiver over HTTP in a background thread; a context manager."""

    def __init__(self, receiver: WebhookReceiver, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), receiver)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{PATH}"

    def __enter__(self) -> WebhookServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
