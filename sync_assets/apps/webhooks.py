"""Strava's push subscription receiver: validate, queue, group-commit, answer within 2 seconds.

Strava (developers.strava.com, "Webhook Events API") validates a callback URL with
`GET ?hub.mode=subscribe&hub.challenge=X&hub.verify_token=T` and expects `{"hub.challenge": X}`
within two seconds; it then POSTs one JSON event per change (`object_type` activity|athlete,
`object_id`, `aspect_type` create|update|delete, `owner_id`, `subscription_id`, `event_time`,
`updates`) and wants a 200 within two seconds, redelivering (a few times) an event that got
anything else. The sensor `strava_webhook_events` turns stored events into syncs, deletions and
deauthorizations.

How a burst is absorbed: the ASGI handlers (Starlette on uvicorn: one event loop, no thread
per connection) validate each event (size, JSON, schema, subscription id; a malformed or forged
event is refused with 400/403/413 and changes nothing) and put it on a bounded in-process queue.
One writer thread drains the queue and stores all the events waiting (up to `max_batch`) in one
transaction (`Store.record_webhook_events`, group commit: one commit for many events), then
wakes each waiting handler (a future of the event loop, resolved from the writer thread). A
handler answers 200 only after its event's batch has committed (durable before 200). It answers
503 with `Retry-After`, so that Strava redelivers, when the queue is full (at once: memory stays
bounded), when the batch failed (a batch is all or nothing; the writer carries on with the next
one) or when no commit came within `timeout` seconds. A redelivered event is stored once (same
object, aspect, owner and time). A single writer also commits ids in arrival order, which the
sensor's id cursor relies on.

What bounds the server (`WebhookServer`): uvicorn's `limit_concurrency` (connections and
requests at once; beyond it uvicorn answers 503 itself), the listen backlog, a body cap read
from `Content-Length` and enforced while streaming (413), a deadline on reading a body (408),
keep-alive connections closed after a few idle seconds, and no access log (query strings carry
the verify token and OAuth codes).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sync_assets.core.storage import Store
from sync_assets.core.webhook_events import WebhookEvent

if TYPE_CHECKING:
    from sync_assets.apps.oauth import StravaOAuth

log = logging.getLogger(__name__)
MAX_EVENT_BYTES = 64 * 1024
PATH = "/webhook"
QUEUE_SIZE = 1000
TIMEOUT_SECONDS = 1.5  # Strava wants an answer within 2 s
MAX_BATCH = 500
RETRY_AFTER_SECONDS = 1
LIMIT_CONCURRENCY = 512  # connections and requests at once; beyond, uvicorn answers 503
BACKLOG = 1024  # a burst's connections wait in the kernel, not refused
BODY_TIMEOUT_SECONDS = 10.0  # a client that stalls mid-body gets a 408
KEEP_ALIVE_SECONDS = 5


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
    """One queued event and the handler waiting for its batch (a thread's `done`, or an event
    loop's `wake`, called from the writer thread)."""

    __slots__ = ("done", "event", "event_id", "failed", "state", "wake")

    def __init__(self, event: dict[str, Any], wake: Callable[[], None] | None = None) -> None:
        self.event = event
        self.done = threading.Event()
        self.wake = wake
        self.state = _WAITING
        self.event_id: int | None = None
        self.failed = False

    def finish(self) -> None:
        self.done.set()
        if self.wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody left to answer
                self.wake()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_STOP = object()
Answer = tuple[int, dict[str, Any]]


class WebhookReceiver:
    """The receiver's logic, apart from HTTP: easy to mount in any web framework (answer 503
    with a `Retry-After: retry_after` header). The writer thread starts with the first event
    (or `start()`); `close()` drains the queue and stops it. `event` / `submit` block the
    calling thread; `event_async` / `submit_async` await on an event loop."""

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
    def challenge(self, query: dict[str, str]) -> Answer:
        token = query.get("hub.verify_token", "")
        if query.get("hub.mode") != "subscribe" or "hub.challenge" not in query:
            return 400, {"error": "not a subscription validation request"}
        if not hmac.compare_digest(token.encode(), self._verify_token.encode()):
            return 403, {"error": "verify token mismatch"}
        return 200, {"hub.challenge": query["hub.challenge"]}

    def validate(self, body: bytes) -> Answer | WebhookEvent:
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

    def event(self, body: bytes) -> Answer:
        """Validate, queue, wait for the batch's commit: 200 means stored (or stored before)."""
        checked = self.validate(body)
        if not isinstance(checked, WebhookEvent):
            return checked
        return self.submit(checked.model_dump())

    async def event_async(self, body: bytes) -> Answer:
        """`event` on an event loop: the loop goes on serving while the batch commits."""
        checked = self.validate(body)
        if not isinstance(checked, WebhookEvent):
            return checked
        return await self.submit_async(checked.model_dump())

    def submit(self, event: dict[str, Any]) -> Answer:
        """Queue a validated event and wait for its batch; 503 if full, failed or too slow."""
        pending = _Pending(event)
        refused = self._enqueue(pending)
        if refused is not None:
            return refused
        try:
            if not pending.done.wait(self.timeout):
                late = self._give_up(pending)
                if late is not None:
                    return late
            return self._outcome(pending)
        finally:
            with self._lock:
                self._waiting -= 1

    async def submit_async(self, event: dict[str, Any]) -> Answer:
        """`submit` without blocking the loop: the writer thread resolves a future of it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        pending = _Pending(event, lambda: loop.call_soon_threadsafe(_resolve, future))
        refused = self._enqueue(pending)
        if refused is not None:
            return refused
        try:
            try:
                async with asyncio.timeout(self.timeout):  # no task of its own, as wait_for
                    await future
            except TimeoutError:
                late = self._give_up(pending)
                if late is not None:
                    return late
            return self._outcome(pending)
        finally:
            with self._lock:
                self._waiting -= 1

    def _enqueue(self, pending: _Pending) -> Answer | None:
        """Put `pending` on the queue (None), or the refusal: full or shutting down."""
        if self._writer is None:
            self.start()
        with self._lock:
            if self._stopping:
                return 503, {"error": "shutting down, try again"}
            try:
                self._queue.put_nowait(pending)
            except queue.Full:
                self.stats.refused_full += 1
                return 503, {"error": "queue full, try again"}
            self._waiting += 1
            self.stats.accepted += 1
            self.stats.max_queued = max(self.stats.max_queued, self._queue.qsize())
            self.stats.max_waiting = max(self.stats.max_waiting, self._waiting)
        return None

    def _give_up(self, pending: _Pending) -> Answer | None:
        """The timeout passed: the 503, unless the outcome arrived meanwhile (None)."""
        with self._lock:
            if pending.done.is_set():
                return None
            if pending.state == _WAITING:  # too late; the writer skips it if not taken
                pending.state = _ABANDONED
            self.stats.timed_out += 1
            return 503, {"error": "not stored in time, try again"}

    @staticmethod
    def _outcome(pending: _Pending) -> Answer:
        if pending.failed:
            return 503, {"error": "could not store, try again"}
        return 200, {"stored": pending.event_id is not None}

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
                p.finish()
            return
        with self._lock:
            self.stats.batches += 1
            self.stats.written += len(live)
        for p, event_id in zip(live, ids, strict=True):
            p.event_id = event_id
            p.finish()


# -- HTTP: Starlette routes ----------------------------------------------------------------
def json_answer(status: int, body: dict[str, Any], retry_after: int | None = None) -> Response:
    """A JSON answer; a 503 carries `Retry-After` so that clients (Strava) come back."""
    headers = {"Retry-After": str(retry_after)} if status == 503 and retry_after else None
    return JSONResponse(body, status_code=status, headers=headers)


async def read_capped(request: Request, limit: int) -> bytes | Response:
    """The body, framed by a `Content-Length` of at most `limit` bytes (checked before
    reading, enforced while streaming), or the refusal: 400, 408, 413."""
    if request.headers.get("transfer-encoding"):
        return json_answer(400, {"error": "a Content-Length is required"})
    try:
        length = int(request.headers.get("content-length") or 0)
    except ValueError:
        length = -1
    if length < 0 or length > limit:
        return json_answer(413 if length > 0 else 400, {"error": "bad Content-Length"})
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT_SECONDS):
            async for chunk in request.stream():
                size += len(chunk)
                if size > length:
                    return json_answer(413, {"error": "body longer than its Content-Length"})
                chunks.append(chunk)
    except TimeoutError:
        return json_answer(408, {"error": "the body came too slowly"})
    except ClientDisconnect:  # the client went away mid-body: nobody to answer
        return json_answer(400, {"error": "truncated body"})
    body = b"".join(chunks)
    if len(body) != length:
        return json_answer(400, {"error": "truncated body"})
    return body


def webhook_routes(receiver: WebhookReceiver) -> list[Route]:
    """`GET /webhook` (the subscription's validation) and `POST /webhook` (events)."""

    async def challenge(request: Request) -> Response:
        query = {k: v for k, v in request.query_params.multi_items()}  # the last value wins
        return json_answer(*receiver.challenge(query))

    async def event(request: Request) -> Response:
        body = await read_capped(request, MAX_EVENT_BYTES)
        if not isinstance(body, bytes):
            return body
        try:
            status, answer = await receiver.event_async(body)
        except Exception as exc:  # a bug, not a bad event: Strava retries a non-200
            log.warning("could not handle a webhook event: %s", type(exc).__name__)
            status, answer = 503, {"error": "try again"}
        return json_answer(status, answer, receiver.retry_after)

    return [Route(PATH, challenge, methods=["GET"]), Route(PATH, event, methods=["POST"])]


def create_app(
    receiver: WebhookReceiver | None = None, oauth: StravaOAuth | None = None
) -> Starlette:
    """The project's web service: the push receiver and (with `oauth`) the OAuth endpoints."""
    routes: list[Route] = []
    if receiver is not None:
        routes += webhook_routes(receiver)
    if oauth is not None:
        routes += oauth.routes()
    return Starlette(routes=routes)


class WebhookServer:
    """The web service on uvicorn in a background thread, with the receiver's writer; a
    context manager. Leaving it stops accepting, lets the requests in flight get their
    batch's answer, then drains the receiver's queue."""

    def __init__(
        self,
        receiver: WebhookReceiver | None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        oauth: StravaOAuth | None = None,
        limit_concurrency: int = LIMIT_CONCURRENCY,
        backlog: int = BACKLOG,
        sock: socket.socket | None = None,
    ) -> None:
        """`sock`: a socket bound already (its address known before the OAuth settings that
        name it were made), instead of `host` and `port`."""
        self.receiver = receiver
        self._socket = sock or socket.create_server((host, port), backlog=backlog)
        config = uvicorn.Config(
            create_app(receiver, oauth),
            limit_concurrency=limit_concurrency,
            backlog=backlog,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=10,
            access_log=False,  # query strings hold the verify token, OAuth codes and JWTs
            log_config=None,  # the application's logging stays as configured
            lifespan="off",
            server_header=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}{PATH}"

    def __enter__(self) -> WebhookServer:
        if self.receiver is not None:
            self.receiver.start()
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("the webhook server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True  # no new requests; those waiting get their answer
        self._thread.join(timeout=15)
        if self.receiver is not None:
            self.receiver.close()
        self._socket.close()
