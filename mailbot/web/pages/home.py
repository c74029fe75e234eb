"""The console's front door: `/` goes to 受付一覧 (or, for a contractor-only account, to
提出状況)."""

from __future__ import annotations

from starlette.responses import Response

from ..app import Ctx, Routes

ROUTES = Routes()


@ROUTES.page("/")
def home(ctx: Ctx) -> Response:
    return ctx.redirect("/mails" if ctx.scope.any_issuer else "/submissions")
