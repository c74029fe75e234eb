"""アカウント: who is logged in, what the account sees, and changing one's own password
(which ends every other session of the account)."""

from __future__ import annotations

from starlette.responses import Response

from ..accounts import AccountError
from ..app import Ctx, Routes

ROUTES = Routes()


@ROUTES.page("/account")
def account(ctx: Ctx) -> Response:
    return ctx.render("account.html.j2", error=None, issuers=_issuers(ctx))


@ROUTES.page("/account/password", methods=("POST",))
def change_password(ctx: Ctx) -> Response:
    accounts = ctx.web.accounts
    if accounts.verify(ctx.account.name, ctx.form.get("current", "")) is None:
        return ctx.render("account.html.j2", 400, issuers=_issuers(ctx),
                          error="現在のパスワードが違います。")
    new = ctx.form.get("new", "")
    if new != ctx.form.get("again", ""):
        return ctx.render("account.html.j2", 400, issuers=_issuers(ctx),
                          error="新しいパスワードが確認欄と一致しません。")
    try:
        accounts.set_password(ctx.account.name, new, ctx.now)
    except AccountError:
        return ctx.render("account.html.j2", 400, issuers=_issuers(ctx),
                          error="新しいパスワードは12文字以上にしてください"
                                "(前後の空白は使えません)。")
    ctx.audit("password_changed", target=f"account:{ctx.account.name}")
    # This session was issued before the change: a fresh one for the same person.
    ctx.request.session["issued"] = ctx.now.timestamp() + 0.001
    return ctx.redirect("/account", "パスワードを変更しました。ほかの端末のログインは終了しました。")


def _issuers(ctx: Ctx) -> list[str]:
    if ctx.account.all_issuers:
        return ["すべての発注者"]
    known = ctx.web.config.issuers
    return [known[k].name or k for k in ctx.account.issuers if k in known]
