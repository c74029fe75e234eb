"""`mailbot init DIR`: a starter configuration and a key-hashing secret for a new installation.

Writes `DIR/mailbot.toml` (from the shipped `mailbot.starter.toml`: commented, and valid as
written) and `DIR/mailbot.secret` (mode 0600, the secret `mailbot.store.secret` reads), never
over an existing file, then says what to edit next. `--state-dir` puts the database and the
spool elsewhere (under systemd: the unit's StateDirectory, /var/lib/mailbot).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..config import load_config
from ..config.examples import STARTER, example_text, examples_folder
from ..errors import UsageError
from ..store.secret import SECRET_FILE_NAME, write_secret_file
from .options import Commands

CONFIG_NAME = "mailbot.toml"
DATABASE_NAME = "mailbot.db"  # the starter's [store] url, in the state folder


def register(commands: Commands) -> None:
    init = commands.add_parser(
        "init", help="write a starter mailbot.toml and a key-hashing secret into DIR")
    init.add_argument("dir", metavar="DIR", help="folder for mailbot.toml and mailbot.secret "
                      "(created if missing)")
    init.add_argument("--state-dir", metavar="DIR",
                      help="where the database and the spool go (default: DIR; under the "
                      "systemd unit: /var/lib/mailbot)")
    init.set_defaults(func=run_init)


def starter_config(config: Path, secret: Path, state_dir: Path) -> str:
    """The starter file's text with this installation's absolute paths filled in."""
    for path in (config, secret, state_dir):
        if any(c in str(path) for c in "\n\r\"\\"):
            raise UsageError(f"{path}: a path with a quote, backslash or line break cannot "
                             "go into the configuration; choose another folder")
    def quoted(path: Path) -> str:
        return json.dumps(path.as_posix(), ensure_ascii=False)[1:-1]

    return (example_text(STARTER).replace("@STATE_DIR@", quoted(state_dir))
            .replace("@CONFIG@", quoted(config)).replace("@SECRET@", quoted(secret)))


def run_init(args: argparse.Namespace) -> int:
    folder = Path(args.dir).absolute()
    state = Path(args.state_dir).absolute() if args.state_dir else folder
    config, secret = folder / CONFIG_NAME, folder / SECRET_FILE_NAME
    for path in (config, secret):
        if path.exists() or path.is_symlink():
            raise UsageError(f"{path} already exists: not overwritten (move it away first, "
                             "or init another folder)")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} exists and is not a folder")
    database = state / DATABASE_NAME
    if database.exists():  # its key hashes were made with another secret than ours
        raise UsageError(f"{database} already exists: its keys are hashed with the secret it "
                         f"was created with, and the new {secret} would make every one look "
                         "wrong (keep the old configuration and secret, or init another "
                         "--state-dir)")
    text = starter_config(config, secret, state)
    folder.mkdir(parents=True, exist_ok=True)
    write_secret_file(secret)
    # No secret in it: the service's user must be able to read it (mode 0644 before umask).
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    load_config(config)  # the starter must be a valid configuration as written
    print(f"wrote {config} (the configuration; no secrets in it)")
    print(f"wrote {secret} (the key-hashing secret, mode 0600: back it up with the database; "
          "without it no stored key can be checked)")
    print("\nNext:")
    print(f"  1. Edit {config}: the lines marked EDIT ([issuers.main], [[mailboxes]], [smtp]).")
    print(f"     Every setting is explained in {examples_folder() / 'mailbot.example.toml'}")
    print(f"  2. Check it:              mailbot config check {config}")
    print(f"  3. Create the store:      mailbot migrate --config {config}")
    print(f"  4. Import the guarantees: mailbot store import --config {config} FILE")
    print(f"  5. Run it:                mailbot run --config {config}")
    print("     or as a service: contrib/systemd/mailbot.service, see docs/deploy.md")
    if state != folder:
        print(f"\nThe database and the spool go in {state}: systemd's StateDirectory= creates "
              "it; otherwise create it, owned by the user mailbot runs as.")
        print(f"The service reads the secret as the credential {SECRET_FILE_NAME} "
              f"(LoadCredential={SECRET_FILE_NAME}:{secret}); commands run with --config "
              f"read the same file ([store] secret_file), or MAILBOT_SECRET_FILE={secret}. "
              "The store refuses any other secret.")
    return 0
