"""`mailbot web`: serve the clerks' console (docs/console.md), and `mailbot web user
add|passwd|disable|enable|list`: its local accounts.

A password is read from the terminal without echo (twice), or from the first line of stdin
with `--password-stdin` (for scripts); never from the command line, where `ps` shows it.
"""

from __future__ import annotations

import argparse
import getpass
import signal
import sys
import threading
from datetime import UTC, datetime

from ..config import load_config
from ..errors import UsageError
from .options import Commands, add_config_and_store, open_store


def register(commands: Commands) -> None:
    web = commands.add_parser("web", help="serve the web console; manage its accounts")
    # Given before an ACTION (`mailbot web --config X user list`) or after it.
    web.add_argument("--config", dest="web_config", metavar="FILE",
                     help="mailbot configuration (TOML); required")
    web.add_argument("--store", dest="web_store", metavar="URL",
                     help="SQLAlchemy URL of the guarantee store (overrides the config's)")
    web.add_argument("--listen", metavar="HOST:PORT",
                     help="where to serve (default: [web] listen, else 127.0.0.1:8080)")
    web.set_defaults(func=run_web, default_log_level="INFO")
    groups = web.add_subparsers(dest="web_command", metavar="ACTION")
    user = groups.add_parser("user", help="console accounts")
    actions = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="add an account")
    add.add_argument("name", help="the account's name (letters, digits, . _ @ -)")
    add_config_and_store(add, config_required=False)
    add.add_argument("--role", required=True, choices=("viewer", "operator", "admin"),
                     help="viewer reads; operator also acts; admin also imports and downloads")
    add.add_argument("--issuer", action="append", default=[], metavar="ID",
                     help="an [issuers.ID] whose mail the account sees (repeat); * for all")
    add.add_argument("--contractor", action="store_true",
                     help="the account sees the contractor side (submissions)")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of stdin")
    add.set_defaults(func=run_user)
    for name, text in (("passwd", "set an account's password (ends its sessions)"),
                       ("disable", "disable an account (ends its sessions)"),
                       ("enable", "enable a disabled account")):
        action = actions.add_parser(name, help=text)
        action.add_argument("name", help="the account's name (mailbot web user list)")
        add_config_and_store(action, config_required=False)
        if name == "passwd":
            action.add_argument("--password-stdin", action="store_true",
                                help="read the password from the first line of stdin")
        action.set_defaults(func=run_user)
    listing = actions.add_parser("list", help="list the accounts")
    add_config_and_store(listing, config_required=False)
    listing.set_defaults(func=run_user)


def _config_and_store(args: argparse.Namespace) -> None:
    """`--config`/`--store` wherever they were given; a usage error without a config."""
    args.config = getattr(args, "config", None) or args.web_config
    args.store = getattr(args, "store", None) or args.web_store
    if not args.config:
        raise UsageError("--config FILE is required")


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask the password on: use --password-stdin")
    first = getpass.getpass("パスワード: ")
    if getpass.getpass("パスワード(確認): ") != first:
        raise UsageError("the two passwords differ")
    return first


def run_user(args: argparse.Namespace) -> int:
    from ..web.accounts import ALL_ISSUERS, AccountError, Accounts

    _config_and_store(args)
    config = load_config(args.config)
    store = open_store(args, config)
    accounts = Accounts(store.engine)
    now = datetime.now(UTC)
    try:
        if args.user_command == "list":
            for account in accounts.all():
                scope = ",".join(account.issuers) or "-"
                print(f"{account.name}\t{account.role}\tissuers={scope}\t"
                      f"contractor={'yes' if account.contractor else 'no'}\t"
                      f"{'disabled' if account.disabled else 'enabled'}")
            return 0
        if args.user_command == "add":
            unknown = [i for i in args.issuer if i != ALL_ISSUERS and i not in config.issuers]
            if unknown:
                raise UsageError(f"--issuer {unknown[0]}: no [issuers.{unknown[0]}] in "
                                 f"{args.config} (known: {', '.join(config.issuers) or 'none'})")
            accounts.add(args.name, _password(args), args.role, tuple(args.issuer),
                         args.contractor, now)
            print(f"account {args.name} added ({args.role})")
        elif args.user_command == "passwd":
            accounts.set_password(args.name, _password(args), now)
            print(f"password of {args.name} changed; its sessions have ended")
        else:
            accounts.set_disabled(args.name, args.user_command == "disable", now)
            print(f"account {args.name} {args.user_command}d")
        return 0
    except AccountError as exc:
        raise UsageError(str(exc)) from None
    finally:
        store.close()


def _listen_arg(text: str) -> tuple[str, int]:
    """--listen HOST:PORT (``[::1]:8080`` for IPv6)."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen {text}: give HOST:PORT, e.g. 127.0.0.1:8080")
    return host, int(port)


def run_web(args: argparse.Namespace) -> int:
    import uvicorn  # noqa: F401  (fail here, not in a thread, when it is missing)

    from ..web.server import Background

    _config_and_store(args)
    config = load_config(args.config)
    listen = _listen_arg(args.listen) if args.listen else None
    store = open_store(args, config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    signal.signal(signal.SIGINT, lambda _signum, _frame: stop.set())
    console = Background(config, store, listen=listen)
    try:
        try:
            url = console.start()
        except RuntimeError as exc:
            host, port = listen or config.web.listen
            raise UsageError(f"cannot serve on {host}:{port}: {exc}") from None
        print(f"mailbot web: serving on {url} (stop with Ctrl-C)", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            if not console.thread.is_alive():
                print("mailbot web: the server stopped", file=sys.stderr)
                return 1
    finally:
        console.stop()
        store.close()
    return 0
