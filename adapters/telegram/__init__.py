"""The Telegram channel for citizens (python-telegram-bot).

One concern a module; `service` composes them into the part of `kominn run`:

* `service` — `TelegramService` (start/stop, handlers, resend of undelivered answers) and
  `service(runtime)`, what `kominn run` starts.
* `updates` — a Telegram `Update` read as the neutral `Incoming`, and the chat it belongs to.
* `ordering` — per-chat order: tickets in each chat's line, the updates in flight.
* `polling` / `webhook` — the two ways updates arrive, each confirmed only once handled.
* `delivery` — a conversation's answers sent (retried, never twice) and recorded as sent.
* `render` — a neutral `Reply` as Telegram shows it (HTML, keyboards, UTF-16 limits).
* `pacing` — flood control, overall and per chat.
* `sender` — the `Sender`s the follow-up dispatcher uses, in `kominn run` and in
  `kominn jobs run-due`.
* `commands` — the command menu; `links` — t.me links into the bot (competition deep links).
* `api` / `errors` — the token and Bot API addresses; what Telegram's errors mean here.
"""
