"""受付一覧 (every received mail in scope, filtered, searched, keyset pages:
`mailbot/web/mail_list.py`), one mail's page (`mailbot/web/mail_view.py`) and — for
operators — the raw mail's download, audited before a byte is sent.

A mail outside the account's scope, or missing, is 404 on every route; so is the download of
a mail whose raw file was purged. A parameter the list cannot use is answered with a
Japanese message on the page (400), never an error page.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response

from mailbot.ledger import Entry, Ledger, spool_for

from .. import mail_list as listing
from .. import mail_view as view
from ..app import Ctx, Routes, not_found

ROUTES = Routes()


@ROUTES.page("/mails")
def mails(ctx: Ctx) -> Response:
    filters = listing.Filters.of(ctx.request.query_params)
    offered = listing.choices(ctx.web.config, ctx.scope)
    error: str | None = None
    page = listing.Page((), None)
    try:
        after = listing.Cursor.decode(ctx.param("after")) if ctx.param("after") else None
        where = listing.conditions(filters, ctx.scope, offered)
        with ctx.web.store.engine.connect() as conn:
            page = listing.list_page(conn, where, after)
    except listing.BadQuery as bad:
        error = str(bad)
    next_link = None
    if page.next is not None:
        next_link = "/mails?" + urlencode({**filters.params(), "after": page.next.encode()})
    return ctx.render("mails.html.j2", 400 if error else 200, filters=filters,
                      offered=offered, page=page, next_link=next_link, error=error,
                      paged=bool(ctx.param("after")))


def _book(ctx: Ctx) -> Ledger:
    """The ledger with its spool, made once (opening the spool checks its folders)."""
    book = ctx.web.services.get("mail_ledger")
    if not isinstance(book, Ledger):
        book = ctx.web.services["mail_ledger"] = Ledger(ctx.web.store.engine,
                                                        spool_for(ctx.web.config,
                                                                  ctx.web.store))
    return book


def _entry(ctx: Ctx) -> Entry:
    ledger_id = ctx.request.path_params["ledger_id"]
    if ledger_id > listing.MAX_ID:  # the database refuses it (OverflowError): no such mail
        raise not_found()
    with ctx.web.store.engine.connect() as conn:
        entry = view.scoped_entry(conn, ctx.scope, ledger_id)
    if entry is None:
        raise not_found()
    return entry


@ROUTES.page("/mails/{ledger_id:int}")
def mail(ctx: Ctx) -> Response:
    entry = _entry(ctx)
    with ctx.web.store.engine.connect() as conn:
        shown = view.mail_view(conn, _book(ctx), entry)
        decided_at = view.decided_at(conn, entry.id)
    return ctx.render("mail.html.j2", mail=shown, entry=entry, decided_at=decided_at,
                      trail=ctx.web.audit.of_mail(entry.id),
                      can_download=ctx.account.can("operator"))


@ROUTES.page("/mails/{ledger_id:int}/raw", role="operator")
def raw(ctx: Ctx) -> Response:
    entry = _entry(ctx)
    data, _why = view.raw_of(_book(ctx), entry)
    if data is None:
        raise not_found()
    ctx.audit("raw_downloaded", target=f"ledger:{entry.id}", ledger_id=entry.id,
              detail=f"{len(data)} bytes sha256={entry.sha256[:16]}")
    return Response(data, media_type="message/rfc822", headers={
        "content-disposition": f'attachment; filename="mail-{entry.id}.eml"'})
