"""Strava's push subscription receiver: validate, queue, group-commit, answer within 2 seconds.

Strava (developers.strava.com, "Webhook Events API") validates a callback URL with
`GET ?hub.mode=subscribe&hub.challenge=X&hub.verify_token=T` and expects `{"hub.challenge": X}`
within two seconds; it then POSTs one JSON event per change (`object_type` activity|athlete,
`object_id`, `aspect_type` create|update|delete, `owner_id`, `subscription_id`, `event_time`,
`updates`) and wants a 200 within two seconds, redelivering (a few times) an event that got
anything else. The sensor `strava_webhook_events` turns stored events into syncs, deletions and
deauthorizations.

How a burst is absorbed: the HTTP handler threads validate each event (size, JSON, schema,
subscription id; a malformed or forged event is refused with 400/403/413 and changes nothing)
and put it on a bounded in-process queue. One writer thread drains the queue and stores all the
events waiting (up to `max_batch`) in one transaction (`Store.record_webhook_events`, group
commit: one commit for many events), then wakes each waiting handler. A handler answers 200
only after its event's batch has committed (durable before 200). It answers 503 with
`Retry-After`, so that Strava redelivers, when the queue is full (at once: memory stays
bounded), when the batch failed (a batch is all or nothing; the writer carries on with the next
one) or when no commit came within `timeout` seconds. A redelivered event is stored once (same
object, aspect, owner and time). A single writer also commits ids in arrival order, which the
sensor's id cursor relies on.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import queue
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import ValidationError

from sync_assets.core.storage import Store
from sync_assets.core.webhook_events import WebhookEvent

log = logging.getLogger(__name__)
MAX_EVENT_BYTES = 64 * 1024
PATH = "/webhook"
QUEUE_SIZE = 1000
TIMEOUT_SECONDS = 1.5  # Strava wants an answer within 2 s
MAX_BATCH = 500
RETRY_AFTER_SECONDS = 1


@dataclass
class WebhookStats:
    """Counters of a receiver since it started: what a burst did (tests, logs)."""

    accepted: int = 0  # events put on the queue
    refused_full: int = 0  # 503 at once: the queue was full
    timed_out: int = 0  # 503: no commit within the timeout
    failed: int = 0  # 503: their batch's transaction failed
    batches: int = 0  # transactions committed
    failed_batches: int = 0
    written: int = 0  # events in committed batches (redeliveries included)
    max_queued: int = 0  # the queue's high-water mark (never above queue_size)
    max_waiting: int = 0  # most handlers waiting at once (queued + being written)


_WAITING, _TAKEN, _ABANDONED = "waiting", "taken", "abandoned"


class _Pending:
    """One queued event and the handler waiting for its batch."""

    __slots__ = ("done", "event", "event_id", "failed", "state")

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        self.done = threading.Event()
        self.state = _WAITING
        self.event_id: int | None = None
        self.failed = False


_STOP = object()


class WebhookReceiver:
    """The receiver's logic, apart from HTTP: easy to mount in any web framework (answer 503
    with a `Retry-After: retry_after` header). The writer thread starts with the first event
    (or `start()`); `close()` drains the queue and stops it."""

    def __init__(
        self,
        store: Store,
        verify_token: str,
        subscription_id: int | None = None,
        *,
        queue_size: int = QUEUE_SIZE,
        timeout: float = TIMEOUT_SECONDS,
        max_batch: int = MAX_BATCH,
        retry_after: int = RETRY_AFTER_SECONDS,
    ) -> None:
        if not verify_token:
            raise ValueError("a webhook receiver needs STRAVA_WEBHOOK_VERIFY_TOKEN")
        if queue_size < 1 or max_batch < 1 or timeout <= 0:
            raise ValueError("queue_size, max_batch and timeout must be positive")
        self.store = store
        self._verify_token = verify_token
        self.subscription_id = subscription_id
        self.queue_size = queue_size
        self.timeout = timeout
        self.max_batch = max_batch
        self.retry_after = retry_after
        self.stats = WebhookStats()
        self._queue: queue.Queue[_Pending | object] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()  # the stats and each pending event's state
        self._waiting = 0
        self._writer: threading.Thread | None = None
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._writer is None and not self._stopping:
                self._writer = threading.Thread(
                    target=self._write_loop, name="webhook-writer", daemon=True
                )
                self._writer.start()

    def close(self, timeout: float = 10.0) -> None:
        """Refuse new events, store those queued, stop the writer."""
        with self._lock:
            self._stopping = True
            writer = self._writer
        with contextlib.suppress(queue.Full):  # if full, the writer stops once it is empty
            self._queue.put_nowait(_STOP)
        if writer is not None:
            writer.join(timeout)

    def __enter__(self) -> WebhookReceiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests -------------------------------------------------------------------------
    def challenge(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        token = query.get("hub.verify_token", "")
        if query.get("hub.mode") != "subscribe" or "hub.challenge" not in query:
            return 400, {"error": "not a subscription validation request"}
        if not hmac.compare_digest(token.encode(), self._verify_token.encode()):
            return 403, {"error": "verify token mismatch"}
        return 200, {"hub.challenge": query["hub.challenge"]}

    def validate(self, body: bytes) -> tuple[int, dict[str, Any]] | WebhookEvent:
        """The event, or the refusal (400/403/413): nothing invalid reaches the queue."""
        if len(body) > MAX_EVENT_BYTES:
            return 413, {"error": "event too large"}
        try:
            event = WebhookEvent.model_validate(json.loads(body))
        except (ValueError, ValidationError, RecursionError) as exc:
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else "not JSON"
            return 400, {"error": f"malformed event: {reason}"}
        if self.subscription_id is not None and event.subscription_id != self.subscription_id:
            return 403, {"error": "unknown subscription"}
        return event

    def event(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """Validate, queue, wait for the batch's commit: 200 means stored (or stored before)."""
        checked = self.validate(body)
        if not isinstance(checked, WebhookEvent):
            return checked
        return self.submit(checked.model_dump())

    def submit(self, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Queue a validated event and wait for its batch; 503 if full, failed or too slow."""
        full = 503, {"error": "queue full, try again"}
        if self._writer is None:
            self.start()
        pending = _Pending(event)
        with self._lock:
            if self._stopping:
                return 503, {"error": "shutting down, try again"}
            try:
                self._queue.put_nowait(pending)
            except queue.Full:
                self.stats.refused_full += 1
                return full
            self._waiting += 1
            self.stats.accepted += 1
            self.stats.max_queued = max(self.stats.max_queued, self._queue.qsize())
            self.stats.max_waiting = max(self.stats.max_waiting, self._waiting)
        try:
            if not pending.done.wait(self.timeout):
                with self._lock:
                    if not pending.done.is_set():  # too late; the writer skips it if not taken
                        if pending.state == _WAITING:
                            pending.state = _ABANDONED
                        self.stats.timed_out += 1
                        return 503, {"error": "not stored in time, try again"}
            if pending.failed:
                return 503, {"error": "could not store, try again"}
            return 200, {"stored": pending.event_id is not None}
        finally:
            with self._lock:
                self._waiting -= 1

    # -- the writer -----------------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            batch: list[_Pending] = []
            item = self._queue.get()
            while True:
                if isinstance(item, _Pending):
                    batch.append(item)
                if len(batch) >= self.max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)
            if self._stopping and self._queue.empty():
                return

    def _write(self, batch: list[_Pending]) -> None:
        """One transaction for the batch; every waiting handler learns the outcome."""
        with self._lock:
            live = [p for p in batch if p.state == _WAITING]  # their handlers still wait
            for p in live:
                p.state = _TAKEN
        if not live:
            return
        try:
            ids = self.store.record_webhook_events([p.event for p in live])
            if len(ids) != len(live):
                raise RuntimeError("the store answered for a different number of events")
        except Exception as exc:  # the database is down: 503s, Strava redelivers
            log.warning("could not store %d webhook event(s): %s", len(live), type(exc).__name__)
            with self._lock:
                self.stats.failed_batches += 1
                self.stats.failed += len(live)
            for p in live:
                p.failed = True
                p.done.set()
            return
        with self._lock:
            self.stats.batches += 1
            self.stats.written += len(live)
        for p, event_id in zip(live, ids, strict=True):
            p.event_id = event_id
            p.done.set()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # seconds of socket silence: a client that stalls mid-body loses its thread
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # query strings hold the verify token: nothing of the request line is logged

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 503:
            self.send_header("Retry-After", str(self.server.receiver.retry_after))
        if self.close_connection:
            self.send_header("Connection", "close")
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
            self.close_connection = True  # its body is left unread
            return self._answer(404, {"error": "not found"})
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return self._answer(400, {"error": "a Content-Length is required"})
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_EVENT_BYTES:
            self.close_connection = True
            return self._answer(413 if length > 0 else 400, {"error": "bad Content-Length"})
        try:
            body = self.rfile.read(length)
        except OSError:  # the client stalled or went away: nobody to answer
            self.close_connection = True
            return None
        if len(body) != length:
            self.close_connection = True
            return self._answer(400, {"error": "truncated body"})
        try:
            status, answer = self.server.receiver.event(body)
        except Exception as exc:  # a bug, not a bad event: Strava retries a non-200
            log.warning("could not handle a webhook event: %s", type(exc).__name__)
            status, answer = 503, {"error": "try again"}
        self._answer(status, answer)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst's connections wait in the kernel, not refused

    def __init__(self, address: tuple[str, int], receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        super().__init__(address, _Handler)


class WebhookServer:
    """The receiver over HTTP in a background thread, with its writer; a context manager."""

    def __init__(self, receiver: WebhookReceiver, host: str = "127.0.0.1", port: int = 0) -> None:
        self.receiver = receiver
        self._server = _Server((host, port), receiver)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{PATH}"

    def __enter__(self) -> WebhookServer:
        self.receiver.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()  # no new requests; those waiting get their batch's answer
        self.receiver.close()
        self._server.server_close()
        self._thread.join(timeout=5)
