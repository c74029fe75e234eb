"""The console's ASGI application: sessions, log in, CSRF, security headers, and how a page
is declared.

A page is a plain function of a `Ctx` (the request, the logged-in account, its scope, the
posted form) returning a response; `Routes.page(path, role=…)` wraps it so that it runs only
for a logged-in account of at least that role, in Starlette's thread pool (the store is
synchronous SQLAlchemy), after a POST's CSRF token was checked. Each page module
(`mailbot/web/pages/`) has one `Routes`; `create_app` mounts them all.

Safety, for a console in front of municipal staff:
- the session is a signed cookie (itsdangerous, via Starlette), HttpOnly, SameSite=Strict,
  Secure with `[web] https`, keyed by a key derived from the store's secret; it names the
  account, when it was issued and a session id the server keeps (`sessions.py`); it ends
  at log out (a copy of the cookie too), after `[web] session_hours`, and when the account
  is disabled or its password changed after it was issued;
- every POST carries the session's CSRF token (`csrf` field), log in included;
- log ins are throttled per account and per address (`throttle.py`);
- every response has a CSP without inline script, `frame-ancestors 'none'`, nosniff,
  no referrer across origins and `Cache-Control: no-store`;
- a row outside the account's scope is 404, a role too low 403;
- every page is checked against the store's key hashes before it leaves, and a key of the
  store found in it is masked (`redact.py`).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as AsgiScope

from mailbot.config import Config
from mailbot.replies.render import REPO_TEMPLATES
from mailbot.store import Store

from .accounts import Account, Accounts
from .audit import Audit
from .format import FILTERS
from .redact import KeyRedactor
from .scope import Scope
from .sessions import Sessions
from .throttle import LoginThrottle

Clock = Callable[[], datetime]
WEB_TEMPLATES = REPO_TEMPLATES / "web"
MAX_FORM_BYTES = 5 * 1024 * 1024  # a CSV import's upload; anything else is far smaller

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Web:
    """What every page may use: the configuration, the store and its owners' objects."""

    config: Config
    store: Store
    clock: Clock
    accounts: Accounts
    audit: Audit
    throttle: LoginThrottle
    sessions: Sessions
    templates: Environment
    redactor: KeyRedactor
    services: dict[str, Any] = field(default_factory=dict)  # page modules' own, by name


@dataclass
class Ctx:
    """One request to a page."""

    request: Request
    web: Web
    account: Account
    scope: Scope
    form: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def now(self) -> datetime:
        return self.web.clock()

    @property
    def address(self) -> str:
        return client_address(self.request, self.web.config.web.trusted_proxies)

    def param(self, name: str, default: str = "") -> str:
        value = self.request.query_params.get(name, default)
        return value[:500]

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        return render(self.request, self.web, template, status, account=self.account,
                      **values)

    def redirect(self, path: str, flash: str | None = None, **query: str) -> RedirectResponse:
        if flash:
            self.request.session["flash"] = flash[:500]
        target = path + ("?" + urlencode(query) if query else "")
        return RedirectResponse(target, status_code=303)

    def audit(self, action: str, *, target: str | None = None, ledger_id: int | None = None,
              detail: str | None = None, conn: Any = None) -> None:
        self.web.audit.write(self.account.name, action, at=self.now, address=self.address,
                             target=target, ledger_id=ledger_id, detail=detail, conn=conn)

    def require(self, role: str) -> None:
        if not self.account.can(role):
            raise HTTPException(403)


def not_found() -> HTTPException:
    """A row that does not exist or is outside the account's scope: the same answer."""
    return HTTPException(404)


def client_address(request: Request, trusted: tuple[str, ...]) -> str:
    """The client's address: the peer, or the last hop of X-Forwarded-For when the peer is a
    trusted proxy."""
    peer = request.client.host if request.client else ""
    if peer in trusted:
        forwarded = request.headers.get("x-forwarded-for", "").split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(forwarded))
        except ValueError:
            return peer
    return peer


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def render(request: Request, web: Web, template: str, status: int = 200,
           **values: Any) -> HTMLResponse:
    flash = request.session.pop("flash", None)
    html = web.templates.get_template(template).render(
        request=request, csrf=csrf_token(request), flash=flash, now=web.clock(), **values)
    return HTMLResponse(web.redactor.redact(html), status_code=status)


class Routes:
    """One page module's routes."""

    def __init__(self) -> None:
        self.routes: list[BaseRoute] = []

    def page(self, path: str, *, role: str = "viewer", methods: tuple[str, ...] = ("GET",),
             name: str | None = None) -> Callable[[Callable[[Ctx], Response]],
                                                  Callable[[Ctx], Response]]:
        def wrap(fn: Callable[[Ctx], Response]) -> Callable[[Ctx], Response]:
            self.routes.append(Route(path, endpoint=_endpoint(fn, role), methods=list(methods),
                                     name=name or fn.__name__))
            return fn

        return wrap


def _endpoint(fn: Callable[[Ctx], Response], role: str) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        web: Web = request.app.state.web
        account = await run_in_threadpool(session_account, request, web)
        if account is None:
            if request.method != "GET":
                raise HTTPException(403)
            return RedirectResponse("/login?" + urlencode({"next": request.url.path}),
                                    status_code=303)
        if not account.can(role):
            raise HTTPException(403)
        form: dict[str, str] = {}
        files: dict[str, bytes] = {}
        if request.method == "POST":
            form, files = await read_form(request)
            check_csrf(request, form)
        ctx = Ctx(request, web, account, Scope.of(account, web.config), form, files)
        return await run_in_threadpool(fn, ctx)

    return endpoint


async def read_form(request: Request) -> tuple[dict[str, str], dict[str, bytes]]:
    length = request.headers.get("content-length")
    if length is None:  # chunked: nothing would bound it before it is all read (and spooled)
        raise HTTPException(411)
    if not length.isdigit() or int(length) > MAX_FORM_BYTES:
        raise HTTPException(413)
    try:
        data = await request.form(max_files=2, max_fields=200)
    except Exception as exc:  # a malformed body: the client's fault
        raise HTTPException(400) from exc
    form: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for key, value in data.multi_items():
        if isinstance(value, UploadFile):
            content = await value.read(MAX_FORM_BYTES + 1)
            if len(content) > MAX_FORM_BYTES:
                raise HTTPException(413)
            files[key] = content
            form.setdefault(f"{key}.filename", value.filename or "")  # the import's name
        elif key not in form:
            form[key] = value
    return form, files


def check_csrf(request: Request, form: Mapping[str, str]) -> None:
    expected = request.session.get("csrf")
    given = form.get("csrf", "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(),
                                                                given.encode()):
        raise HTTPException(403, "csrf")


def session_account(request: Request, web: Web) -> Account | None:
    """The logged-in account, None when there is none or its session has ended (logged
    out, expired, or the account disabled or its password changed since)."""
    name = request.session.get("account")
    issued = request.session.get("issued")
    session_id = request.session.get("sid")
    if (not isinstance(name, str) or not isinstance(issued, (int, float))
            or not isinstance(session_id, str)):
        return None
    account = web.accounts.get(name)
    if (account is None or account.disabled or account.changed_at.timestamp() > issued
            or not web.sessions.live(session_id, name, web.clock())):
        request.session.pop("account", None)
        return None
    return account


# -- log in and out ------------------------------------------------------------------------


def _safe_next(target: str) -> str:
    """Only a path of this site: never `//other.example` or a scheme."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def login(request: Request) -> Response:
    web: Web = request.app.state.web
    target = _safe_next(request.query_params.get("next", "/"))
    if request.method == "GET":
        return render(request, web, "login.html.j2", next=target, error=None, account=None)
    form, _files = await read_form(request)
    check_csrf(request, form)
    name = form.get("name", "")[:64]
    password = form.get("password", "")[:1024]
    address = client_address(request, web.config.web.trusted_proxies)
    keys = [f"account:{name}", f"address:{address}"]
    now = web.clock()
    if await run_in_threadpool(web.throttle.blocked, keys, now):
        await run_in_threadpool(web.audit.write, name or "-", "login_throttled", at=now,
                                address=address)
        return render(request, web, "login.html.j2", 429, next=target, account=None,
                      error="ログインの失敗が続いたため、しばらく受け付けません。"
                            "1分ほど待ってからやり直してください。")
    account = await run_in_threadpool(web.accounts.verify, name, password)
    if account is None:
        await run_in_threadpool(web.throttle.failed, keys, now)
        await run_in_threadpool(web.audit.write, name or "-", "login_failed", at=now,
                                address=address)
        return render(request, web, "login.html.j2", 401, next=target, account=None,
                      error="アカウント名またはパスワードが違います。")
    session_id = await run_in_threadpool(web.sessions.open, account.name, address, now)
    request.session.clear()  # a new session: no fixation, a fresh CSRF token
    request.session.update(account=account.name, issued=now.timestamp(), sid=session_id,
                           csrf=secrets.token_urlsafe(32))
    await run_in_threadpool(web.audit.write, account.name, "login", at=now, address=address)
    return RedirectResponse(form.get("next") and _safe_next(form["next"]) or target,
                            status_code=303)


async def logout(request: Request) -> Response:
    form, _files = await read_form(request)
    check_csrf(request, form)
    web: Web = request.app.state.web
    session_id, name = request.session.get("sid"), request.session.get("account")
    request.session.clear()
    if isinstance(session_id, str):  # a copy of the cookie is refused from now on
        now = web.clock()
        if await run_in_threadpool(web.sessions.end, session_id, now) and isinstance(name, str):
            await run_in_threadpool(web.audit.write, name, "logout", at=now,
                                    address=client_address(request,
                                                           web.config.web.trusted_proxies))
    return RedirectResponse("/login", status_code=303)


async def http_error(request: Request, exc: Exception) -> Response:
    web: Web = request.app.state.web
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    messages = {400: "要求の形式が正しくありません。",
                403: "この操作を行う権限がないか、フォームの有効期限が切れています。"
                     "ページを開き直してください。",
                404: "指定されたページまたはデータは見つかりません。",
                405: "この方法では操作できません。",
                411: "送信されたデータの長さが分かりません。ブラウザのフォームから送信してください。",
                413: "送信されたデータが大きすぎます。"}
    return render(request, web, "error.html.j2", status, account=None, code=status,
                  message=messages.get(status, "エラーが発生しました。"))


# -- the application -----------------------------------------------------------------------


class SecurityHeaders:
    """Adds `SECURITY_HEADERS` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in {h for h, _ in SECURITY_HEADERS}]
                message["headers"] = headers + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


class Console(Starlette):
    """Starlette with `SecurityHeaders` outermost: Starlette puts its ServerErrorMiddleware
    (which answers an unexpected exception, a 500) outside every user middleware, so a
    header middleware among them would miss the error page."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())


def template_environment(directory: Path = WEB_TEMPLATES) -> Environment:
    env = Environment(loader=FileSystemLoader(str(directory)), undefined=StrictUndefined,
                      autoescape=select_autoescape(default=True), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(FILTERS)
    return env


def create_app(config: Config, store: Store, *, clock: Clock = utc_now,
               throttle: LoginThrottle | None = None) -> Starlette:
    """The console for `config` on `store`; `clock` is the time every page and action use."""
    from .pages import all_routes

    web = Web(config=config, store=store, clock=clock, accounts=Accounts(store.engine),
              audit=Audit(store.engine), throttle=throttle or LoginThrottle(store.engine),
              sessions=Sessions(store.engine, config.web.session_hours),
              templates=template_environment(), redactor=KeyRedactor(store))
    routes: list[BaseRoute] = [
        Route("/login", endpoint=login, methods=["GET", "POST"], name="login"),
        Route("/logout", endpoint=logout, methods=["POST"], name="logout"),
        Mount("/static", app=StaticFiles(directory=str(WEB_TEMPLATES / "static")),
              name="static"),
        *all_routes(),
    ]
    secret = store.derived_key("web session").hex()
    middleware = [
        Middleware(SessionMiddleware, secret_key=secret, session_cookie="mailbot_session",
                   max_age=config.web.session_hours * 3600, same_site="strict",
                   https_only=config.web.https),
    ]
    app = Console(routes=routes, middleware=middleware,
                    exception_handlers={HTTPException: http_error, 500: http_error})
    app.state.web = web
    return app
