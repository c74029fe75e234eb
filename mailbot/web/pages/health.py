"""稼働状況 (every account; what it shows is scoped): per mailbox of the account's scope the
source state, backlog and oldest waiting mail; the outbox by state; the next send window
(`mailbot/web/health_view.py`, the figures of `mailbot status`)."""

from __future__ import annotations

from starlette.responses import Response

from .. import health_view as view
from ..app import Ctx, Routes

ROUTES = Routes()


@ROUTES.page("/health")
def health(ctx: Ctx) -> Response:
    now = ctx.now
    with ctx.web.store.engine.connect() as conn:
        sources = view.sources(conn, ctx.scope, ctx.web.config, now)
        counts, unlinked = view.outbox_counts(conn, ctx.scope)
    windows = view.windows(ctx.web.store, ctx.scope, ctx.web.config, now)
    return ctx.render("health.html.j2", sources=sources, counts=counts, unlinked=unlinked,
                      windows=windows, immediate=ctx.web.config.send_window.immediate)
