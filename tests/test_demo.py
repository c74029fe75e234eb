"""`mailbot demo` — the README's first command — runs the whole job on embedded defaults."""

import subprocess
import sys
from email import message_from_bytes, policy


def test_demo_decides_and_answers_every_case(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "mailbot.cli", "demo", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    table = {line.split()[0]: line for line in lines if line.startswith(
        ("ejcs_cid", "fullwidth_values", "generic_header_table", "forwarded", "zip_encrypted",
         "two_pdfs", "body_shift_jis"))}
    assert "verified" in table["ejcs_cid"] and "key_mismatch" in table["fullwidth_values"]
    assert "unknown_number" in table["generic_header_table"]
    assert "issuer_mismatch" in table["forwarded"]
    assert "encrypted_archive" in table["zip_encrypted"]
    assert "7/7 replies written" in run.stdout
    replies = sorted((tmp_path / "out" / "replies").glob("*.eml"))
    assert len(replies) == 7
    confirmation = message_from_bytes(replies[0].read_bytes(), policy=policy.default)
    assert confirmation["Auto-Submitted"] == "auto-replied"
    assert confirmation["Subject"].startswith("Re: ")
    body = confirmation.get_content()
    assert "35075-00001M" in body and "Z28Y********" in body and "Z28YUEAJ38ux" not in body
    zip_reply = message_from_bytes(replies[4].read_bytes(), policy=policy.default).get_content()
    assert "パスワード" in zip_reply
