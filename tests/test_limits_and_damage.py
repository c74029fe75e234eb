"""Bounded work and damaged input: every source yields a result with closed problem codes."""

import random
from dataclasses import replace

import pytest

from mailbot.samples.catalog import all_samples
from parsers import PROBLEM_CODES, Limits, PdfPool, Reader

SAMPLES = {s.name: s for s in all_samples()}


@pytest.fixture(scope="module")
def pool():
    with PdfPool(workers=2, limits=Limits(pdf_timeout_s=5.0)) as pool:
        yield pool


def read(pool, data, limits=None, name="x.eml"):
    return Reader(pool, limits or pool.limits).read_bytes(data, name, name)


def test_message_over_the_size_limit_is_not_read(pool):
    data = SAMPLES["ejcs_cid"].data
    result = read(pool, data, replace(pool.limits, max_message_bytes=len(data) - 1))
    assert [(p.code, p.origin) for p in result.problems] == [("attachment_too_large", "message")]
    assert result.notices == []


def test_attachment_over_the_size_limit_is_skipped_and_the_rest_read(pool):
    sample = SAMPLES["two_pdfs"]
    full = read(pool, sample.data)
    limited = read(pool, sample.data, replace(pool.limits, max_attachment_bytes=1000))
    assert len(full.notices) == 2
    assert {p.code for p in limited.problems} == {"attachment_too_large"}
    assert limited.notices == []


def test_part_limit_reads_up_to_the_limit(pool):
    result = read(pool, SAMPLES["too_many_parts"].data, replace(pool.limits, max_parts=5))
    assert [p.code for p in result.problems] == ["too_many_parts"]
    assert len(result.notices) == 1  # the notice is in the first parts


def test_zip_member_count_limit(pool):
    result = read(pool, SAMPLES["zip_cp932"].data, replace(pool.limits, max_archive_members=1))
    assert [(p.code, p.origin) for p in result.problems] == [
        ("attachment_too_large", "attachment:書類.zip")
    ]


@pytest.mark.parametrize("name", ["ejcs_cid", "forwarded", "zip_cp932", "body_iso2022jp_cp932",
                                  "mac_name_filename_star", "two_pages"])
def test_truncated_and_corrupted_mails_never_crash(pool, name):
    data = SAMPLES[name].data
    truth = {(n["guarantee_number"], n["auth_key"]) for n in SAMPLES[name].expected["notices"]}
    for fraction in (0.05, 0.3, 0.5, 0.7, 0.95):
        result = read(pool, data[: int(len(data) * fraction)])
        assert {p.code for p in result.problems} <= set(PROBLEM_CODES)
        for n in result.notices:
            if (n.guarantee_number, n.auth_key) in truth:
                continue
            # A mail cut inside the key line reads as a shorter key: never a pair that was
            # not sent, and verification rejects it as a key mismatch.
            assert n.origin == "body" and any(
                n.guarantee_number == number and key.startswith(n.auth_key)
                for number, key in truth
            ), n
    rng = random.Random(name)
    for _ in range(5):
        damaged = bytearray(data)
        for _ in range(20):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        result = read(pool, bytes(damaged))
        assert {p.code for p in result.problems} <= set(PROBLEM_CODES)


def test_random_bytes_are_a_mail_without_notice(pool):
    rng = random.Random(7)
    junk = bytes(rng.randrange(256) for _ in range(20000))
    result = read(pool, junk)
    assert [p.code for p in result.problems] == ["no_notice_found"]
    pdf_junk = b"%PDF-1.7\n" + junk
    result = read(pool, pdf_junk, name="junk.pdf")
    assert [p.code for p in result.problems] == ["unreadable_attachment"]
