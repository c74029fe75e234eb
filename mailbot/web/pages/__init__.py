"""The console's pages, one module per page (or pair of list and detail pages), each with one
`Routes` (`mailbot.web.app.Routes`):

- `mails`: 受付一覧 (every received mail, filters, search, keyset pages) and one mail;
- `attention`: 要対応 (what needs a person) and its actions;
- `guarantees`: 電子保証 (a guarantee's history; CSV import with a preview);
- `submissions`: 提出状況 (the contractor side);
- `health`: 稼働状況 (sources, backlog, outbox, the next send window);
- `home` (`/`) and `account` (アカウント: one's scope, one's password).
"""

from __future__ import annotations

from starlette.routing import BaseRoute


def all_routes() -> list[BaseRoute]:
    from . import account, attention, guarantees, health, home, mails, submissions

    routes: list[BaseRoute] = []
    for module in (home, account, mails, attention, guarantees, submissions, health):
        routes.extend(module.ROUTES.routes)
    return routes
