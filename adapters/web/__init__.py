"""The web channel: the citizen chat (`/chat`) and the public idea board (`/ideer`,
`/ideer/KI-n`, `/rapport`) on `kominn run`'s HTTP server, server-rendered with Jinja2, with
small dependency-free JavaScript and CSS served by KomInn itself (no CDN, no build step).

Modules: `service` (the routes and `service(runtime)`), `session` (the signed cookie and the
language), `security` (CSRF, headers, client addresses behind trusted proxies, rate limits),
`render` (templates; `Reply`/`Choice` as HTML), `chat`, `board`, `report`.
"""
