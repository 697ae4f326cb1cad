"""`kominn run`: one asyncio process serving everything that is configured.

uvicorn runs one Starlette app (`/healthz`, `/readyz`, `/metrics`, plus the routes of each
service: the web chat and board (always), Telegram webhook, Slack events, Open311); each
service (web, Telegram, Slack, the scheduler) is started in the same event loop after the
server is up and stopped before it
goes down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.channels import Sender, Service
from bot.observability.metrics import CONTENT_TYPE
from bot.observability.ready import readiness
from bot.runtime import Runtime

log = logging.getLogger("kominn.app")


@dataclass
class App:
    runtime: Runtime
    services: list[Service] = field(default_factory=list)
    senders: dict[str, Sender] = field(default_factory=dict)

    def add(self, service: Service) -> None:
        self.services.append(service)
        sender = getattr(service, "sender", None)
        if sender is not None:
            self.senders[sender.channel] = sender


def build(runtime: Runtime) -> App:
    """Every service the settings enable. Each channel package offers `service(runtime)`."""
    app = App(runtime)
    settings = runtime.settings
    from adapters.web.service import service as web_service

    app.add(web_service(runtime))  # the web chat and the public board: always there
    if settings.telegram_enabled:
        from adapters.telegram.service import service as telegram_service

        app.add(telegram_service(runtime))
    if settings.slack_enabled:
        from adapters.slack.service import service as slack_service

        app.add(slack_service(runtime))
    from bot.followups import scheduler

    app.add(scheduler.service(runtime, app.senders))
    return app


def starlette_app(app: App) -> Starlette:
    async def healthz(request: Request) -> JSONResponse:
        try:
            await asyncio.to_thread(_ping, app.runtime)
        except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
            return JSONResponse({"status": "error", "database": type(exc).__name__}, 503)
        return JSONResponse({"status": "ok", "database": "ok",
                             "services": [s.name for s in app.services]})

    async def readyz(request: Request) -> JSONResponse:
        runtime = app.runtime
        ready, checks = await asyncio.to_thread(readiness, runtime.db, runtime.index.loaded)
        return JSONResponse({"status": "ok" if ready else "not ready", **checks},
                            200 if ready else 503)

    async def metrics(request: Request) -> Response:
        body = await asyncio.to_thread(app.runtime.metrics.render)  # scrape-time DB reads
        return Response(body, media_type=CONTENT_TYPE)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        started: list[Service] = []
        try:
            for service in app.services:
                await service.start()
                started.append(service)
                log.info("service started", extra={"event": "service_started",
                                                   "service": service.name})
            yield
        finally:
            for service in reversed(started):
                try:
                    await service.stop()
                except Exception:  # noqa: BLE001 - stop the others regardless
                    log.exception("service failed to stop", extra={"service": service.name})

    from bot.reports import open311

    routes: list[BaseRoute] = [Route("/healthz", healthz), Route("/readyz", readyz),
                               Route("/metrics", metrics)]
    routes.extend(open311.routes(app.runtime))
    handlers: dict[Any, Any] = {}
    for service in app.services:
        routes.extend(service.routes)
        not_found = getattr(service, "not_found", None)
        if not_found is not None and 404 not in handlers:  # the web's page for unknown paths
            handlers[404] = not_found
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)


def _ping(runtime: Runtime) -> None:
    with runtime.db.connect() as conn:
        conn.execute(text("SELECT 1"))


def serve(runtime: Runtime) -> None:
    """Run until SIGINT/SIGTERM."""
    app = build(runtime)
    settings = runtime.settings
    config = uvicorn.Config(starlette_app(app), host=settings.http_host,
                            port=settings.http_port, log_config=None, lifespan="on")
    asyncio.run(uvicorn.Server(config).serve())
