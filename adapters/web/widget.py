"""`/widget.js` for the municipality's own site: one `<script src=".../widget.js" defer>`
adds a "Har du en idé?" button that opens the same chat (a link to KomInn's own /chat in a
new window: first-party there, so the session cookie stays SameSite=Lax and nothing of
KomInn runs inside the host page but this small script).

The script asks `/widget.json` for its label in the page's language; that cross-origin call is
answered with CORS headers only for the sites in KOMINN_WEB_ORIGINS, so on any other site the
browser keeps the answer from the script and no button appears.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from adapters.web.render import STATIC
from adapters.web.security import HEADERS
from bot.config import Settings
from bot.i18n import normalize_language, translator


class Widget:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.origins = frozenset(settings.web_origins)

    async def script(self, request: Request) -> Response:
        return FileResponse(STATIC / "widget.js", media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=300",
                                     "X-Content-Type-Options": "nosniff"})

    async def config(self, request: Request) -> Response:
        language = normalize_language(request.query_params.get("lang")) or self.settings.locale
        t = translator(language)
        data = {"label": t("web.widget.label"), "chat": f"/chat?lang={language}",
                "opens": t("web.widget.opens")}
        headers = {**HEADERS, "Cache-Control": "public, max-age=300", "Vary": "Origin"}
        origin = request.headers.get("origin")
        if origin and origin.rstrip("/") in self.origins:
            headers["Access-Control-Allow-Origin"] = origin.rstrip("/")
        return JSONResponse(data, headers=headers)
