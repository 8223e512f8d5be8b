"""Strava's push subscriptions, for the sandbox: the events a real app would receive.

Copied from Strava's "Webhook Events API": one subscription per application, created with
`POST /api/v3/push_subscriptions` (`client_id`, `client_secret`, `callback_url`,
`verify_token`); Strava first validates the callback with `GET callback?hub.mode=subscribe&
hub.challenge=...&hub.verify_token=...`, which must echo `{"hub.challenge": ...}`, then answers
`{"id": N}`. `GET` lists it, `DELETE /api/v3/push_subscriptions/{id}` removes it. Events are
POSTed to the callback as JSON (`object_type`, `object_id`, `aspect_type`, `owner_id`,
`subscription_id`, `event_time`, `updates`) and retried (up to 3 attempts) until a 200.
"""

from __future__ import annotations

import json
import queue
import secrets
import threading
import time
from typing import Any

import httpx

MAX_ATTEMPTS = 3


class PushSubscriptions:
    """The subscription of one sandboxed application, and its event delivery thread."""

    def __init__(self, now: Any) -> None:
        self._now = now
        self.subscription: dict[str, Any] | None = None
        self.delivered: list[dict[str, Any]] = []  # events the callback accepted
        self.failed: list[dict[str, Any]] = []  # events given up on
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._next_id = 1
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- the subscription API ---------------------------------------------------------------
    def subscribe(self, callback_url: str, verify_token: str) -> tuple[int, dict[str, Any]]:
        if self.subscription is not None:
            return 400, {
                "message": "Bad Request",
                "errors": [{"resource": "PushSubscription", "field": "", "code": "already exists"}],
            }
        challenge = secrets.token_urlsafe(12)
        try:
            resp = httpx.get(
                callback_url,
                params={
                    "hub.mode": "subscribe",
                    "hub.challenge": challenge,
                    "hub.verify_token": verify_token,
                },
                timeout=2.0,
            )
            ok = resp.status_code == 200 and resp.json().get("hub.challenge") == challenge
        except (httpx.HTTPError, ValueError, AttributeError):
            ok = False
        if not ok:
            return 400, {
                "message": "Bad Request",
                "errors": [
                    {
                        "resource": "PushSubscription",
                        "field": "callback url",
                        "code": "not verifiable",
                    }
                ],
            }
        with self._lock:
            self.subscription = {"id": self._next_id, "callback_url": callback_url}
            self._next_id += 1
        return 200, {"id": self.subscription["id"]}

    def list(self) -> list[dict[str, Any]]:
        return [dict(self.subscription)] if self.subscription else []

    def unsubscribe(self, subscription_id: int) -> bool:
        with self._lock:
            if self.subscription and self.subscription["id"] == subscription_id:
                self.subscription = None
                return True
            return False

    # -- events ----------------------------------------------------------------------------
    def emit(
        self,
        object_type: str,
        object_id: int,
        aspect_type: str,
        owner_id: int,
        updates: dict[str, Any] | None = None,
    ) -> None:
        sub = self.subscription
        if sub is None:
            return
        self._queue.put(
            {
                "aspect_type": aspect_type,
                "event_time": int(self._now()),
                "object_id": object_id,
                "object_type": object_type,
                "owner_id": owner_id,
                "subscription_id": sub["id"],
                "updates": updates or {},
                "_callback": sub["callback_url"],
            }
        )
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._deliver, daemon=True)
                self._thread.start()

    def _deliver(self) -> None:
        with httpx.Client(timeout=2.0) as http:
            while True:
                try:
                    event = self._queue.get(timeout=1.0)
                except queue.Empty:
                    return
                callback = event.pop("_callback")
                for attempt in range(MAX_ATTEMPTS):
                    try:
                        resp = http.post(callback, content=json.dumps(event))
                        if resp.status_code == 200:
                            self.delivered.append(event)
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.05 * (attempt + 1))
                else:
                    self.failed.append(event)
                self._queue.task_done()

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every emitted event was delivered or given up on (tests, demos)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
