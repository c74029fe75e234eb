"""The contractor side: notices in the notification queue → submissions to issuers.

`files` finds a notice's PDF (and the extra files a rule names); `route` finds the issuer of
a notice (the guarantee store, else the mail's text, else `[[projects]]` rules on 工事名);
`render` writes the submission in that issuer's form; `plan` puts these together for one
notice; `track` matches the issuers' answers to submissions; `table` owns the `submissions`
table; `staff` renders mail to the contractor's staff. The pipeline stage that uses them is
`mailbot.pipeline.contractor`; the scheduled jobs are in `remind` (run by
`mailbot.outgoing`).
"""


def issuer_window(issuer: str) -> str:
    """The outbox's name for an issuer's own send window."""
    return f"issuer:{issuer}"
