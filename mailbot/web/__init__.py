"""The web console for issuer and contractor staff (`mailbot web`, docs/console.md).

Server-rendered pages (Starlette, jinja2 templates in `templates/web/`), working without
JavaScript. Modules:

- `app`: the ASGI application, sessions, log in, CSRF, security headers, `Routes`/`Ctx`;
- `accounts` (owns `web_accounts`), `audit` (owns `web_audit`), `sessions` (owns
  `web_sessions`: logging out ends a session for every copy of its cookie), `scope` (what
  an account sees), `throttle` (owns `web_login_failures`: log in throttling), `format` (JST times, Japanese labels);
- `pages/`: one module per page;
- `server`: serving the app with uvicorn, alone or beside the daemon.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
