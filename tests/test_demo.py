"""`mailbot demo` — the README's first command — runs the whole job on embedded defaults."""

import re
import subprocess
import sys
from email import message_from_bytes, policy

import pytest

pytestmark = pytest.mark.clock  # scripts/test runs these again under other clocks


def _mail(path):
    return message_from_bytes(path.read_bytes(), policy=policy.default)


def test_demo_decides_and_answers_every_case(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "mailbot.cli", "demo", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    table = {line.split()[0]: line for line in lines if line.startswith(
        ("ejcs_cid", "fullwidth_values", "generic_header_table", "forwarded", "zip_encrypted",
         "two_pdfs", "body_shift_jis", "surety_"))}
    assert "verified" in table["ejcs_cid"] and "key_mismatch" in table["fullwidth_values"]
    assert "unknown_number" in table["generic_header_table"]
    assert "issuer_mismatch" in table["forwarded"]
    assert "encrypted_archive" in table["zip_encrypted"]
    assert "7/7 replies written" in run.stdout
    replies = sorted((tmp_path / "out" / "replies").glob("*.eml"))
    assert len(replies) == 7
    confirmation = _mail(replies[0])
    assert confirmation["Auto-Submitted"] == "auto-replied"
    assert confirmation["Subject"].startswith("Re: ")
    body = confirmation.get_content()
    assert "35075-00001M" in body and "Z28Y********" in body and "Z28YUEAJ38ux" not in body
    zip_reply = _mail(replies[4]).get_content()
    assert "パスワード" in zip_reply

    # The contractor side: submitted and confirmed; submitted, the issuer finds the wrong
    # key; no issuer to be found. Columns: …, state, the issuer's answer, issuer, subject.
    assert re.search(r" confirmed +verified +〇〇市 +【前払金書類】R8-0412$", table["surety_valid"])
    assert re.search(r" discrepancy +key_mismatch +〇〇市 +【電子保証】R8-0412 〇〇公園整備工事$",
                     table["surety_wrong_key"])
    assert re.search(r" unroutable +- +- +-$", table["surety_unroutable"])
    assert "3/3 notices reached the expected state" in run.stdout

    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "submissions").glob("*.eml")) == [
        "01_surety_valid.answer.eml", "01_surety_valid.eml",
        "02_surety_wrong_key.answer.eml", "02_surety_wrong_key.eml"]
    submission = _mail(out / "submissions" / "01_surety_valid.eml")
    assert submission["From"].addresses[0].addr_spec == "denshi@maru-kensetsu.example.jp"
    assert submission["To"] == "keiyaku@city.example.jp"
    assert submission["Subject"] == "【前払金書類】R8-0412"
    assert "工事番号：R8-0412" in submission.get_body(("plain",)).get_content()
    assert [p.get_content_type() for p in submission.iter_attachments()] == ["application/pdf"]
    answer = _mail(out / "submissions" / "02_surety_wrong_key.answer.eml")
    assert answer["In-Reply-To"] == _mail(out / "submissions" / "02_surety_wrong_key.eml")[
        "Message-ID"]
    assert answer["X-Mailbot-Result"] == "discrepancy; 36201-00102B=key_mismatch"

    staff = sorted((out / "staff").glob("*.eml"))
    assert [p.name for p in staff] == ["02_surety_wrong_key.eml", "03_surety_unroutable.eml"]
    for path in staff:
        alert = _mail(path)
        assert alert["To"] == "jimu@maru-kensetsu.example.jp"
        assert alert["Auto-Submitted"] == "auto-generated"
    unroutable = _mail(staff[1]).get_body(("plain",)).get_content()
    assert "36201-00103C" in unroutable and "提出先の発注者を特定できませんでした" in unroutable
