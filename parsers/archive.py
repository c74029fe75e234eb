"""Open zip attachments safely: cp932 member names, password detection, bomb limits.

Windows' built-in zip writes member names in cp932 without the UTF-8 flag, macOS writes
UTF-8 without it; both are decoded here. A password-protected archive (the PPAP habit)
cannot be read and is reported as `encrypted_archive`. Expansion is bounded by member count,
total size and compression ratio, checked against what is actually inflated, not only
against the sizes the archive declares.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field

from .limits import Limits
from .mime import sanitize_name
from .model import Problem

_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1


@dataclass
class Member:
    name: str
    data: bytes


@dataclass
class Expansion:
    members: list[Member] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def is_zip(data: bytes) -> bool:
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's real name: zipfile decodes flagless names as cp437, undo that."""
    if info.flag_bits & _UTF8_FLAG:
        return info.filename
    raw = info.filename.encode("cp437", "replace")
    for codec in ("utf-8", "cp932"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return info.filename


def _safe_path(name: str) -> str:
    return "/".join(sanitize_name(p) for p in name.replace("\\", "/").split("/") if p not in ("", ".", ".."))


def expand_zip(data: bytes, origin: str, limits: Limits) -> Expansion:
    """The files inside the zip `data`; `origin` names the archive (`attachment:a.zip`)."""
    out = Expansion()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in archive.infolist() if not i.is_dir()]
    except Exception as exc:  # BadZipFile, NotImplementedError, IndexError … on hostile input
        out.problems.append(Problem("unreadable_attachment", origin, f"the zip is damaged ({exc})"))
        return out
    if any(i.flag_bits & _ENCRYPTED_FLAG for i in infos):
        out.problems.append(
            Problem(
                "encrypted_archive",
                origin,
                "the zip is password-protected (ask for it without a password)",
            )
        )
        return out
    if len(infos) > limits.max_archive_members:
        out.problems.append(
            Problem(
                "attachment_too_large",
                origin,
                f"the zip holds {len(infos)} files, over the limit of "
                f"{limits.max_archive_members}",
            )
        )
        return out
    budget = limits.max_archive_bytes
    for info in infos:
        declared_ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > budget or declared_ratio > limits.max_archive_ratio:
            out.problems.append(_bomb(origin, info))
            return out
        try:
            with archive.open(info) as stream:
                content = stream.read(min(budget, limits.max_attachment_bytes) + 1)
        except Exception as exc:  # zlib.error, LZMAError, bad CRC, unsupported method …
            out.problems.append(
                Problem("unreadable_attachment", f"{origin}/{_safe_path(member_name(info))}",
                        f"the zip member could not be extracted ({exc})")
            )
            continue
        if len(content) > min(budget, limits.max_attachment_bytes):
            out.problems.append(_bomb(origin, info))
            return out
        budget -= len(content)
        out.members.append(Member(_safe_path(member_name(info)), content))
    return out


def _bomb(origin: str, info: zipfile.ZipInfo) -> Problem:
    return Problem(
        "attachment_too_large",
        origin,
        f"a member expands to {info.file_size:,} bytes from {info.compress_size:,} "
        "(over the archive limits)",
    )
