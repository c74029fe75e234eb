"""Open zip attachments safely: cp932 member names, password detection, bomb limits.

Windows' built-in zip writes member names in cp932 without the UTF-8 flag, macOS writes
UTF-8 without it; both are decoded here. A password-protected archive (the PPAP habit)
cannot be read and is reported as `encrypted_archive`. Expansion is bounded by member count,
total size and compression ratio, checked against what is actually inflated, not only
against the sizes the archive declares.

Whether a zip is an archive at all (and not an .xlsx or an .odt) is `filekind`'s call. An
archive whose member names all say they cannot hold a notice (photos, spreadsheets …) costs
the sender nothing when it cannot be opened: locked, over the limits or damaged member by
member, it is listed as ignored, not as a problem; so is a member of that kind that cannot
be extracted.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field

from .filekind import ZIP_MAGIC, kind_by_name, may_hold_notice, open_zip
from .limits import Limits
from .mime import sanitize_name
from .model import Ignored, Problem

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
    ignored: list[Ignored] = field(default_factory=list)

    def refuse(self, problem: Problem, names: list[str]) -> Expansion:
        """The archive cannot be opened: a problem, unless no member can be a notice."""
        if names and not any(map(may_hold_notice, names)):
            shown = ", ".join(names[:5]) + (" …" if len(names) > 5 else "")
            self.ignored.append(Ignored(problem.origin, "archive",
                                        f"not opened ({problem.detail}); it holds no file that "
                                        f"can be a notice: {shown}"))
        else:
            self.problems.append(problem)
        return self


def is_zip(data: bytes) -> bool:
    """Starts like a zip file: an archive, or an office document (see `filekind.zip_kind`)."""
    return data[:4] in ZIP_MAGIC


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
        archive = open_zip(data)
        infos = [i for i in archive.infolist() if not i.is_dir()]
    except Exception as exc:  # BadZipFile, NotImplementedError, IndexError … on hostile input
        out.problems.append(Problem("unreadable_attachment", origin, f"the zip is damaged ({exc})"))
        return out
    names = [_safe_path(member_name(i)) for i in infos]
    if any(i.flag_bits & _ENCRYPTED_FLAG for i in infos):
        return out.refuse(
            Problem(
                "encrypted_archive",
                origin,
                "the zip is password-protected (ask for it without a password)",
            ),
            names,
        )
    if len(infos) > limits.max_archive_members:
        return out.refuse(
            Problem(
                "attachment_too_large",
                origin,
                f"the zip holds {len(infos)} files, over the limit of "
                f"{limits.max_archive_members}",
            ),
            names,
        )
    budget = limits.max_archive_bytes
    for info, name in zip(infos, names, strict=True):
        declared_ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > budget or declared_ratio > limits.max_archive_ratio:
            return out.refuse(_bomb(origin, info), names)
        try:
            with archive.open(info) as stream:
                content = stream.read(min(budget, limits.max_attachment_bytes) + 1)
        except Exception as exc:  # zlib.error, LZMAError, bad CRC, unsupported method …
            where, detail = f"{origin}/{name}", f"the zip member could not be extracted ({exc})"
            kind = kind_by_name(name)
            if kind is None or kind.holds_notices:
                out.problems.append(Problem("unreadable_attachment", where, detail))
            else:
                out.ignored.append(Ignored(where, kind.kind, f"{detail}; a {kind.label} "
                                                             "cannot be a notice"))
            continue
        if len(content) > min(budget, limits.max_attachment_bytes):
            return out.refuse(_bomb(origin, info), names)
        budget -= len(content)
        out.members.append(Member(name, content))
    return out


def _bomb(origin: str, info: zipfile.ZipInfo) -> Problem:
    return Problem(
        "attachment_too_large",
        origin,
        f"a member expands to {info.file_size:,} bytes from {info.compress_size:,} "
        "(over the archive limits)",
    )
