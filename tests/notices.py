"""A notice's fields shared by the tests that render one PDF (fictional values)."""

from mailbot.samples.notice_pdf import NoticeFields

FIELDS = NoticeFields(
    guarantee_number="35075-00001M",
    auth_key="Z28YUEAJ38ux",
    kind="前払金保証",
    project_name="〇〇浄水場△△修繕工事",
    contractor="〇〇建設 株式会社",
    surety="東日本建設業保証株式会社",
)
