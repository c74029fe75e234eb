"""電子保証: find a guarantee by 保証契約番号, its history (every version, never the key) with
the mails that cited it, and — for admins — the CSV import with a preview
(`mailbot/web/import_view.py`).

A guarantee outside the account's scope (its latest version names an issuer the account
does not see) is 404, as if it did not exist. The import is audited twice: the preview
(`store_import_previewed`) and what was written (`store_imported`).
"""

from __future__ import annotations

import threading
from pathlib import Path

from starlette.responses import Response

from mailbot.store import StoreError
from parsers.normalize import canonical_number

from .. import guarantees_view as view
from ..app import Ctx, Routes, not_found
from ..import_view import SUFFIXES, Preview, Uploads, display_name, preview, suffix_of

ROUTES = Routes()
_UPLOADS_LOCK = threading.Lock()


@ROUTES.page("/guarantees")
def guarantees(ctx: Ctx) -> Response:
    typed = ctx.param("q")
    number: str | None = None
    found: list[view.Found] = []
    if typed:
        with ctx.web.store.engine.connect() as conn:
            number, found = view.search(conn, ctx.scope, typed)
        if number is not None and [f.number for f in found] == [number]:
            return ctx.redirect(f"/guarantees/{number}")
    return ctx.render("guarantees.html.j2", q=typed, number=number, found=found,
                      searched=bool(typed))


@ROUTES.page("/guarantees/import", role="admin", methods=("GET", "POST"))
def import_file(ctx: Ctx) -> Response:
    if ctx.request.method == "GET":
        return _import_page(ctx)
    if ctx.form.get("token"):
        return _confirm(ctx)
    data = ctx.files.get("file")
    name = display_name(_upload_name(ctx))
    if not data:
        return _import_page(ctx, 400, error="ファイルを選んでください。")
    if suffix_of(name) is None:
        return _import_page(ctx, 400, error=(
            f"{name}: 取り込めるのは {', '.join(SUFFIXES)} のファイルです"
            "（mailbot store import と同じ形式。Excel の場合は CSV で保存してください）。"))
    upload = _uploads(ctx).keep(ctx.account.name, name, data, ctx.now)
    result = _preview(ctx, upload.path, name)
    ctx.audit("store_import_previewed", target=f"import:{name}"[:80],
              detail=_summary(result))
    if not result.ok:
        _uploads(ctx).drop(upload.token)
        return _import_page(ctx, 422, result=result)
    return _import_page(ctx, result=result, token=upload.token)


@ROUTES.page("/guarantees/{number}")
def guarantee(ctx: Ctx) -> Response:
    number = canonical_number(str(ctx.request.path_params["number"])[:60])
    if number is None:
        raise not_found()
    with ctx.web.store.engine.connect() as conn:
        if not view.visible(conn, ctx.scope, number):
            raise not_found()
        versions = view.history(conn, number)
        mails = view.citing_mails(conn, ctx.scope, number)
    return ctx.render("guarantees_detail.html.j2", number=number, versions=versions,
                      mails=mails, limit=view.MAX_CITING)


# -- the import --------------------------------------------------------------------------


def _uploads(ctx: Ctx) -> Uploads:
    with _UPLOADS_LOCK:
        uploads = ctx.web.services.get("guarantee_imports")
        if not isinstance(uploads, Uploads):
            uploads = ctx.web.services["guarantee_imports"] = Uploads()
        return uploads


def _upload_name(ctx: Ctx) -> str:
    """The name the browser gave the uploaded file (`read_form` keeps it as `file.filename`)."""
    return ctx.form.get("file.filename", "")


def _preview(ctx: Ctx, path: Path, name: str) -> Preview:
    return preview(ctx.web.store, path, name, ctx.scope.sees_guarantee_issuer,
                   source=f"web:{ctx.account.name}:{name}")


def _summary(result: Preview) -> str:
    return (f"{result.name} sha256={result.sha256[:16]} rows={result.rows} "
            f"numbers={result.numbers} new={result.new} changed={result.changed} "
            f"unchanged={result.unchanged} errors={len(result.errors)}")


def _confirm(ctx: Ctx) -> Response:
    uploads = _uploads(ctx)
    token = ctx.form.get("token", "")
    upload = uploads.get(token, ctx.account.name, ctx.now)
    if upload is None:
        return _import_page(ctx, 410, error="確認画面の有効期限が切れたか、既に取り込み済みです。"
                                            "もう一度ファイルを選んでください。")
    result = _preview(ctx, upload.path, upload.name)
    if result.sha256 != upload.sha256 or not result.ok:
        uploads.drop(token)
        return _import_page(ctx, 409, result=result, error=(
            "確認の後に保証データが変わったため、このファイルは取り込めません。"
            "内容を確認してやり直してください。"))
    try:
        report = ctx.web.store.apply(result.events)
    except StoreError as exc:
        uploads.drop(token)
        result.errors = list(exc.errors)
        return _import_page(ctx, 409, result=result, error="取り込めませんでした（何も書き込んでいません）。")
    uploads.drop(token)
    ctx.audit("store_imported", target=f"import:{upload.name}"[:80],
              detail=f"{upload.name} sha256={upload.sha256[:16]} added={report.added} "
                     f"skipped={report.skipped}")
    return ctx.redirect("/guarantees/import", f"{upload.name}: {report.added} 件を取り込みました"
                                              f"（取り込み済みのため変更なし {report.skipped} 件）。")


def _import_page(ctx: Ctx, status: int = 200, *, result: Preview | None = None,
                 token: str | None = None, error: str | None = None) -> Response:
    return ctx.render("guarantees_import.html.j2", status, result=result, token=token,
                      error=error, suffixes=", ".join(SUFFIXES))
