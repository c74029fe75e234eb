"""要対応: what needs a person in the account's scope (`mailbot/web/act_items.py`), each
item with its actions for operators (`mailbot/web/actions.py`); viewers see the list
without buttons. `?handled=1` lists the items marked handled since their row last changed.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import Response

from .. import act_items
from ..actions import act
from ..app import Ctx, Routes

ROUTES = Routes()


@ROUTES.page("/attention")
def attention(ctx: Ctx) -> Response:
    show_handled = ctx.param("handled") == "1"
    with ctx.web.store.engine.connect() as conn:
        found = act_items.items(conn, ctx.web.config, ctx.scope, ctx.now,
                                ctx.web.audit.handled, show_handled=show_handled)
    return ctx.render("attention.html.j2", found=found, kinds=act_items.KINDS,
                      kinds_ja=act_items.KINDS_JA, actions_ja=act_items.ACTIONS_JA,
                      show_handled=show_handled, can_act=ctx.account.can("operator"),
                      total=sum(len(v) for v in found.values()))


@ROUTES.page("/attention/act", role="operator", methods=("POST",))
def attention_act(ctx: Ctx) -> Response:
    kind = ctx.form.get("kind", "")
    row_id = ctx.form.get("id", "")
    if kind not in act_items.KINDS or not (row_id.isascii() and row_id.isdigit()) \
            or len(row_id) > 18:
        raise HTTPException(400)
    flash = act(ctx, kind, int(row_id), ctx.form.get("action", ""), ctx.form.get("note", ""))
    return ctx.redirect("/attention", flash)
