"""Build requests the way Slack sends them to a Bolt HTTP endpoint, correctly signed.

Why this exists: the Slack adapter must be tested through Bolt's real request verification
(``X-Slack-Signature`` / ``X-Slack-Request-Timestamp``) and Bolt's real payload parsing, not by
calling listener functions directly. So tests need byte-exact bodies in the shapes Slack uses
(form-urlencoded slash commands, ``payload=<json>`` interactivity, JSON Events API envelopes) plus
the matching signature headers.

The signature is computed here with ``hmac`` from Slack's documented recipe
(``v0=HMAC_SHA256(secret, "v0:{timestamp}:{body}")``) rather than with slack_sdk's
``SignatureVerifier``, so a test that passes proves the adapter and Slack's spec agree, not merely
that slack_sdk agrees with itself.

Identity constants below are shared with :mod:`tests.fakes.slack_api` so that the team/bot the
fake ``auth.test`` reports matches the team in the payloads built here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

__all__ = [
    "API_APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "NO_RESPONSE_URL",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "VERIFICATION_TOKEN",
    "app_home_opened_event",
    "block_action_body",
    "block_action_payload",
    "event_body",
    "message_event",
    "sign",
    "signed_headers",
    "slash_command_body",
    "view_submission_body",
    "view_submission_payload",
]

TEAM_ID = "T0KOMINN"
TEAM_DOMAIN = "kominn-test"
API_APP_ID = "A0KOMINN"
BOT_USER_ID = "U0KOMINNBOT"
BOT_ID = "B0KOMINNBOT"
# Deprecated by Slack but still present in every payload; Bolt ignores it when a secret is set.
VERIFICATION_TOKEN = "legacy-verification-token"
# Default response_url: loopback "discard" port, so a forgotten respond() fails fast with
# "connection refused" instead of trying to reach hooks.slack.com. Pass fake.response_url().
NO_RESPONSE_URL = "http://127.0.0.1:9/no-response-url-given"

_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"


def sign(body: str | bytes, secret: str, timestamp: int | str) -> str:
    """Return Slack's ``v0=`` signature for *body* at *timestamp* (used by signed_headers)."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    base = b"v0:" + str(timestamp).encode("ascii") + b":" + raw
    digest = hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return f"v0={digest}"


def signed_headers(
    body: str | bytes,
    secret: str,
    timestamp: int | None = None,
    *,
    content_type: str | None = None,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Headers Slack would send with *body*: timestamp, signature and content type.

    ``timestamp`` defaults to now; pass ``int(time.time()) - 360`` to build a stale (replayed)
    request that Bolt must reject. The content type is guessed like Slack does it: JSON for
    Events API bodies (starting with ``{``), form-urlencoded otherwise. ``retry_num`` adds
    ``X-Slack-Retry-Num``/``X-Slack-Retry-Reason`` as Slack does when it re-delivers an event
    that was not acked within 3 seconds; ``extra`` adds arbitrary headers.
    """
    ts = int(time.time()) if timestamp is None else int(timestamp)
    if content_type is None:
        head = body.lstrip()[:1]
        content_type = _JSON if head in ("{", b"{") else _FORM
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": sign(body, secret, ts),
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason
    if extra:
        headers.update(extra)
    return headers


# --------------------------------------------------------------------------- slash commands


def slash_command_body(
    command: str = "/kominn",
    text: str = "status KI-1",
    user_id: str = "U1",
    response_url: str = NO_RESPONSE_URL,
    trigger_id: str = "T1",
    channel_id: str = "C1",
    *,
    user_name: str | None = None,
    channel_name: str = "general",
    team_id: str = TEAM_ID,
    api_app_id: str = API_APP_ID,
) -> str:
    """A slash command body, form-urlencoded with the fields Slack sends (field order too)."""
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
    return urlencode(fields)


# --------------------------------------------------------------------------- interactivity


def _payload_form(payload: Mapping[str, Any]) -> str:
    """Interactivity requests are ``payload=<url-encoded JSON>`` (one form field)."""
    return "payload=" + quote(json.dumps(payload, separators=(",", ":")), safe="")


def _user(user_id: str, team_id: str) -> dict[str, str]:
    name = user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def _team(team_id: str) -> dict[str, str]:
    return {"id": team_id, "domain": TEAM_DOMAIN}


def _default_message(
    action_id: str, value: str, block_id: str, channel_id: str, ts: str
) -> dict[str, Any]:
    """A bot message carrying the button that was clicked, as Slack echoes it back."""
    return {
        "type": "message",
        "subtype": "bot_message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": API_APP_ID,
        "team": TEAM_ID,
        "ts": ts,
        "text": "KomInn",
        "blocks": [
            {
                "type": "actions",
                "block_id": block_id,
                "elements": [
                    {
                        "type": "button",
                        "action_id": action_id,
                        "value": value,
                        "text": {"type": "plain_text", "text": value, "emoji": True},
                    }
                ],
            }
        ],
    }


def block_action_payload(
    action_id: str,
    value: str,
    user_id: str = "U1",
    response_url: str = NO_RESPONSE_URL,
    message: Mapping[str, Any] | None = None,
    container: Mapping[str, Any] | None = None,
    trigger_id: str = "T1",
    *,
    block_id: str = "kominn_actions",
    channel_id: str = "C1",
    channel_name: str = "general",
    team_id: str = TEAM_ID,
    action_type: str = "button",
    view: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The decoded ``block_actions`` payload (see block_action_body for the wire form).

    With ``view=`` the click happened inside a modal/App Home: Slack then sends a ``view``
    container and no channel, message or response_url, which is exactly the case where
    ``respond()`` is unavailable in Bolt.
    """
    action_ts = f"{time.time():.6f}"
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user_id, team_id),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "team": _team(team_id),
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if view is not None:
        payload["container"] = dict(container or {"type": "view", "view_id": view.get("id", "V1")})
        payload["view"] = dict(view)
    else:
        msg = (
            dict(message)
            if message is not None
            else _default_message(action_id, value, block_id, channel_id, "1700000000.000100")
        )
        payload["container"] = dict(
            container
            or {
                "type": "message",
                "message_ts": msg.get("ts", "1700000000.000100"),
                "channel_id": channel_id,
                "is_ephemeral": False,
            }
        )
        payload["channel"] = {"id": channel_id, "name": channel_name}
        payload["message"] = msg
        payload["state"] = dict(state or {"values": {}})
        payload["response_url"] = response_url
    payload["actions"] = [
        {
            "action_id": action_id,
            "block_id": block_id,
            "value": value,
            "type": action_type,
            "text": {"type": "plain_text", "text": value, "emoji": True},
            "action_ts": action_ts,
        }
    ]
    return payload


def block_action_body(
    action_id: str,
    value: str,
    user_id: str = "U1",
    response_url: str = NO_RESPONSE_URL,
    message: Mapping[str, Any] | None = None,
    container: Mapping[str, Any] | None = None,
    trigger_id: str = "T1",
    **kwargs: Any,
) -> str:
    """A button click as Slack posts it: form body ``payload=<json block_actions>``.

    Extra keyword arguments go to :func:`block_action_payload` (block_id, channel_id, view, ...).
    """
    return _payload_form(
        block_action_payload(
            action_id, value, user_id, response_url, message, container, trigger_id, **kwargs
        )
    )


def _state_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Expand ``{block: {action: "text"}}`` shorthand into Slack's ``state.values`` shape.

    A leaf that is already a dict (e.g. ``{"type": "static_select", "selected_option": ...}``)
    is kept verbatim, so any input element can be expressed.
    """
    out: dict[str, Any] = {}
    for block_id, actions in values.items():
        out[block_id] = {}
        for action_id, leaf in actions.items():
            if isinstance(leaf, Mapping):
                out[block_id][action_id] = dict(leaf)
            else:
                out[block_id][action_id] = {"type": "plain_text_input", "value": leaf}
    return out


def view_submission_payload(
    callback_id: str,
    values: Mapping[str, Any],
    user_id: str = "U1",
    private_metadata: str = "",
    *,
    view_id: str = "V1",
    team_id: str = TEAM_ID,
    trigger_id: str = "T1",
    blocks: list[dict[str, Any]] | None = None,
    response_urls: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The decoded ``view_submission`` payload (see view_submission_body)."""
    return {
        "type": "view_submission",
        "team": _team(team_id),
        "user": _user(user_id, team_id),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "blocks": blocks or [],
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": _state_values(values)},
            "hash": "1700000000.abcdef",
            "title": {"type": "plain_text", "text": "KomInn", "emoji": True},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": None,
            "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": API_APP_ID,
            "external_id": "",
            "app_installed_team_id": team_id,
            "bot_id": BOT_ID,
        },
        "response_urls": list(response_urls or []),
        "is_enterprise_install": False,
        "enterprise": None,
    }


def view_submission_body(
    callback_id: str,
    values: Mapping[str, Any],
    user_id: str = "U1",
    private_metadata: str = "",
    **kwargs: Any,
) -> str:
    """A modal submit as Slack posts it: form body ``payload=<json view_submission>``.

    ``values`` is ``{block_id: {action_id: leaf}}``; a plain string leaf becomes a
    ``plain_text_input`` value. Note: Bolt answers view submissions with the ack() body, so
    ``ack(response_action="errors", errors={...})`` shows up as JSON in the HTTP response.
    """
    return _payload_form(
        view_submission_payload(callback_id, values, user_id, private_metadata, **kwargs)
    )


# --------------------------------------------------------------------------- Events API


def event_body(
    event: Mapping[str, Any],
    event_id: str = "Ev1",
    *,
    team_id: str = TEAM_ID,
    event_time: int | None = None,
) -> str:
    """An Events API ``event_callback`` envelope around *event*, as JSON text.

    ``authorizations`` names our bot, which is what Bolt's self-event filter compares against
    (the bot user id from auth.test), so events from ``BOT_USER_ID`` are dropped like in prod.
    """
    now = int(time.time()) if event_time is None else event_time
    inner = dict(event)
    inner.setdefault("event_ts", f"{now}.000100")
    envelope = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": API_APP_ID,
        "event": inner,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": now,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-fake-{event_id}",
    }
    return json.dumps(envelope, separators=(",", ":"))


def app_home_opened_event(
    user_id: str, *, tab: str = "home", channel: str | None = None
) -> dict[str, Any]:
    """The ``app_home_opened`` event (wrap it with event_body); the adapter publishes Home."""
    return {
        "type": "app_home_opened",
        "user": user_id,
        "channel": channel or f"D{user_id}",
        "tab": tab,
        "event_ts": f"{time.time():.6f}",
    }


def message_event(
    text: str,
    user_id: str = "U1",
    channel_id: str | None = None,
    *,
    channel_type: str = "im",
    ts: str | None = None,
    thread_ts: str | None = None,
) -> dict[str, Any]:
    """A user's ``message`` event (DM by default: channel ``D<user>``, channel_type ``im``)."""
    ts = ts or f"{time.time():.6f}"
    event: dict[str, Any] = {
        "type": "message",
        "user": user_id,
        "text": text,
        "ts": ts,
        "channel": channel_id or f"D{user_id}",
        "channel_type": channel_type,
        "team": TEAM_ID,
        "event_ts": ts,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event
