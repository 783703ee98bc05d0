"""``/docs`` (Swagger UI) served from this process, so it works without Internet access.

FastAPI's own ``/docs`` page loads Swagger UI's script and style from a CDN: on a plant
network, or a laptop on a train, it is a blank page. The assets come from the PyPI package
``swagger-ui-py`` (Swagger UI 5's release files, Apache-2.0; version 5 is the first that
renders OpenAPI 3.1, which FastAPI writes: ``swagger-ui-bundle`` ships 4.15 and shows
"Unable to render this definition") and are served under ``/docs/static``; the page itself
is FastAPI's ``get_swagger_ui_html`` pointed at them.
Nothing is served when the OpenAPI document is withheld (``MESTWIN_OPENAPI_PUBLIC``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = "/docs/static"


def assets_path() -> Path:
    """Swagger UI's release files (``swagger-ui-bundle.js``, ``swagger-ui.css``...), found
    without importing the package (its ``__init__`` knows web frameworks we do not use)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (a dependency of mestwin)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def install(app: FastAPI) -> None:
    """Serve ``/docs`` with local assets (the app is built with ``docs_url=None``)."""
    if app.openapi_url is None:
        return
    openapi_url = app.openapi_url
    app.mount(STATIC, StaticFiles(directory=assets_path()), name="swagger-ui-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API",
            swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
