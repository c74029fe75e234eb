"""提出状況 (the contractor side): the submissions to issuers, newest first with a state
filter, a search by 保証契約番号 or 工事名 and keyset pages; one submission with its
timeline, the issuer's answer and its earlier submissions (`mailbot/web/submissions_view.py`).

Only an account with the contractor side sees these pages; any other gets 404, as for a
submission outside its scope (there is nothing of its own to list here).
"""

from __future__ import annotations

from starlette.responses import Response

from .. import submissions_view as view
from ..app import Ctx, Routes, not_found

ROUTES = Routes()


def _require_contractor_side(ctx: Ctx) -> None:
    if not ctx.scope.contractor_mailboxes:
        raise not_found()


def _before(ctx: Ctx) -> int | None:
    typed = ctx.param("before")
    return int(typed) if typed.isascii() and typed.isdigit() and len(typed) < 12 else None


@ROUTES.page("/submissions")
def submissions(ctx: Ctx) -> Response:
    _require_contractor_side(ctx)
    state = ctx.param("state")
    state = state if state in view.STATES else ""
    text = ctx.param("q")[:100]
    with ctx.web.store.engine.connect() as conn:
        page = view.listing(conn, ctx.scope, ctx.web.config, state=state, text=text,
                            before=_before(ctx))
    filters = {k: v for k, v in (("state", state), ("q", text)) if v}
    next_query = dict(filters)
    if page.next_before is not None:
        next_query["before"] = str(page.next_before)
    return ctx.render("submissions.html.j2", page=page, state=state, q=text,
                      states=view.STATES_JA, filters=filters, next_query=next_query,
                      first_page=_before(ctx) is None)


@ROUTES.page("/submissions/{submission_id:int}")
def submission(ctx: Ctx) -> Response:
    _require_contractor_side(ctx)
    wanted = int(ctx.request.path_params["submission_id"])
    if wanted >= 2**31:  # no such row; a larger number would not fit the column
        raise not_found()
    with ctx.web.store.engine.connect() as conn:
        found = view.detail(conn, ctx.scope, ctx.web.config, wanted)
    if found is None:
        raise not_found()
    return ctx.render("submission.html.j2", s=found, outbox_states=view.OUTBOX_STATES_JA)
