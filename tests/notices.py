"""A notice's fields shared by the tests that render one PDF (fictional values)."""

from email.message import EmailMessage
from email.utils import make_msgid

from mailbot.samples.notice_pdf import NoticeFields

FIELDS = NoticeFields(
    guarantee_number="35075-00001M",
    auth_key="Z28YUEAJ38ux",
    kind="前払金保証",
    project_name="〇〇浄水場△△修繕工事",
    contractor="〇〇建設 株式会社",
    surety="東日本建設業保証株式会社",
)

NOTICE_NAME = "認証キーのお知らせ.pdf"


def mail_with(sender: str, to: str, subject: str, body: str,
              files: list[tuple[bytes, str, str]]) -> EmailMessage:
    """A mail from `sender` (its domain names the Message-ID) to `to` with `body` and
    `files` attached ((bytes, file name, content type))."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=sender.rstrip(">").rpartition("@")[2])
    message.set_content(body)
    for data, name, ctype in files:
        maintype, subtype = ctype.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message
