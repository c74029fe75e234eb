"""`mailbot demo`: the whole job on embedded defaults, start to finish, in under a minute.

It registers sample guarantees in a fresh SQLite store and starts one daemon with two LMTP
mailboxes on one listener: an issuer's inbox and a contractor's notification queue. A local
SMTP server stands in for the organisation's relay: mail to the daemon's own addresses is
handed back to the listener, everything else is only kept. The issuer side gets sample
contractor mails (valid; wrong key; unknown number; wrong issuer; password-protected zip;
two notices in one mail; a typed body); the contractor side gets surety notifications with a
notice PDF (one the issuer confirms, one it finds a wrong key in, one no issuer can be found
for). The demo waits for every decision, reply, submission and answer, prints two tables and
writes the mails as .eml files to the folder it names. Nothing to install or configure
beyond the package; nothing leaves this machine.

The package: `setting` (the sample organisations, the cases and the daemon's config),
`relay` (the stand-in for the organisation's relay), `run` (start, deliver, wait) and
`report` (the two tables and the .eml files).
"""

from .run import run_demo

__all__ = ["run_demo"]
