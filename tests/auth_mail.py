"""Mails for the authentication tests: a contractor's or issuer's answer, CRLF, with the
From the test names (example.jp domains, 〇〇建設-style names)."""

from __future__ import annotations

from email.header import Header


def answer_mail(from_addr: str = "keiyaku@city.example.jp", body: str = "確認しました。",
                extra: bytes = b"") -> bytes:
    name = Header("〇〇市 契約課", "utf-8").encode()
    return (extra
            + f"From: {name} <{from_addr}>\r\n".encode()
            + b"To: hoshou@maru.example.jp\r\n"
            + b"Subject: =?utf-8?b?" + __import__("base64").b64encode(
                "Re: 【電子保証】〇〇建設".encode()) + b"?=\r\n"
            + b"Date: Tue, 01 Dec 2026 10:00:00 +0900\r\n"
            + b"Message-ID: <answer.1@city.example.jp>\r\n"
            + b"MIME-Version: 1.0\r\n"
            + b"Content-Type: text/plain; charset=utf-8\r\n"
            + b"Content-Transfer-Encoding: 8bit\r\n\r\n"
            + body.encode() + b"\r\n")
