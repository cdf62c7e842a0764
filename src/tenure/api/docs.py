"""The API's interactive documentation at `/docs`: Swagger UI, its files served by this server from the
`swagger-ui-bundle` package (FastAPI's own page loads them from a CDN; pages here work offline)."""

import pathlib

import swagger_ui_bundle
from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response

ASSETS = pathlib.Path(swagger_ui_bundle.swagger_ui_path)
FILES = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
# Swagger UI sets styles inline; nothing else is loosened, and nothing is fetched from another host
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
START = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout" });
});
"""
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tenure API · interactive docs</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head><body>
<main id="swagger-ui"><p>The API's description is at <a href="/openapi.json">/openapi.json</a>; this page shows
it with Swagger UI (it needs JavaScript).</p></main>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/start.js"></script>
</body></html>
"""


def install(app: FastAPI) -> None:
    headers = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"}

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(PAGE, headers=headers | {"Cache-Control": "no-store"})

    @app.get("/docs/{name}", include_in_schema=False)
    def docs_asset(name: str) -> Response:
        cache = headers | {"Cache-Control": "public, max-age=86400"}
        if name == "start.js":
            return Response(START, media_type="text/javascript; charset=utf-8", headers=cache)
        if name not in FILES:
            raise HTTPException(404, f"no file {name!r} in the docs")
        return Response((ASSETS / name).read_bytes(), media_type=FILES[name], headers=cache)
