"""The one reader of ELF files in the project: what relocate, toolchain, the portable checks and
ci/portable_wheel.py ask of a binary (its machine and loader, SONAME, NEEDED, RUNPATH, build ID,
exported symbols, the symbol versions it needs) and of a static archive (the global symbols its objects define).

Pure Python over the ELF structures themselves, so it reads any target's files on any build
machine (32- and 64-bit, either byte order) and cannot "succeed" on a tool's empty output: a file
that is not ELF, or is cut short, raises ELFError. Only patchelf and strip still change files."""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Tuple, Union

MAGIC = b"\x7fELF"
PT_INTERP, SHT_SYMTAB, SHT_DYNAMIC, SHT_NOTE, SHT_DYNSYM, SHT_GNU_VERNEED = 3, 2, 6, 7, 11, 0x6ffffffe
DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH = 1, 14, 15, 29
STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE = 1, 2, 10
NT_GNU_BUILD_ID = 3


class ELFError(ValueError):
    """Not an ELF file, or not a whole one."""


@dataclass(frozen=True)
class Symbol:
    name: str
    binding: int  # STB_*
    defined: bool  # not SHN_UNDEF
    visibility: int  # STV_*: 0 default, 2 hidden

    @property
    def external(self) -> bool:
        """Global or weak (what another object can bind to)."""
        return self.binding in (STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE)


@dataclass(frozen=True)
class Section:
    kind: int
    offset: int
    size: int
    link: int
    entsize: int


class ELFFile:
    """One ELF file's contents, read on demand."""

    def __init__(self, data: bytes, name: str = "ELF data"):
        if data[:4] != MAGIC or len(data) < 52 or data[4] not in (1, 2) or data[5] not in (1, 2):
            raise ELFError(f"{name} is not an ELF file")
        self.data, self.name = data, name
        self.wide = data[4] == 2  # ELFCLASS64
        self.order = "<" if data[5] == 1 else ">"
        (self.machine,) = self._unpack("H", 18)
        offsets, at, sizes_at = ("QQ", 32, 54) if self.wide else ("II", 28, 42)  # the two classes' headers
        self._phoff, self._shoff = self._unpack(offsets, at)
        self._phentsize, self._phnum, self._shentsize, self._shnum = self._unpack("HHHH", sizes_at)

    def _unpack(self, fmt: str, offset: int) -> tuple:
        try:
            return struct.unpack_from(self.order + fmt, self.data, offset)
        except struct.error:
            raise ELFError(f"{self.name} is cut short") from None

    def _string(self, table: Section, offset: int) -> str:
        start = table.offset + offset
        end = self.data.find(b"\0", start, table.offset + table.size)
        if start > len(self.data) or end < 0:
            raise ELFError(f"{self.name}: a string runs past its table")
        return self.data[start:end].decode("utf-8", "replace")

    @functools.cached_property
    def sections(self) -> Tuple[Section, ...]:
        fmt = "IIQQQQIIQQ" if self.wide else "IIIIIIIIII"
        found = []
        for i in range(self._shnum if self._shoff else 0):
            _, kind, _, _, offset, size, link, _, _, entsize = self._unpack(fmt, self._shoff + i * self._shentsize)
            found.append(Section(kind, offset, size, link, entsize))
        return tuple(found)

    @functools.cached_property
    def interpreter(self) -> str:
        """The loader a dynamically linked executable names (PT_INTERP), else ""."""
        for i in range(self._phnum):
            at = self._phoff + i * self._phentsize
            if self.wide:
                kind, _, offset, _, _, size = self._unpack("IIQQQQ", at)
            else:
                kind, offset, _, _, size = self._unpack("IIIII", at)
            if kind == PT_INTERP:
                return self.data[offset:offset + size].rstrip(b"\0").decode("utf-8", "replace")
        return ""

    @functools.cached_property
    def _dynamic(self) -> List[Tuple[int, str]]:
        """The dynamic section's string entries (NEEDED, SONAME, RPATH, RUNPATH), in order."""
        entries = []
        for section in self.sections:
            if section.kind != SHT_DYNAMIC:
                continue
            strings = self.sections[section.link]
            step = 16 if self.wide else 8
            for at in range(section.offset, section.offset + section.size, step):
                tag, value = self._unpack("qQ" if self.wide else "iI", at)
                if tag == 0:  # DT_NULL
                    break
                if tag in (DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH):
                    entries.append((tag, self._string(strings, value)))
        return entries

    @property
    def soname(self) -> str:
        return next((value for tag, value in self._dynamic if tag == DT_SONAME), "")

    @property
    def needed(self) -> List[str]:
        return [value for tag, value in self._dynamic if tag == DT_NEEDED]

    @property
    def runpaths(self) -> List[str]:
        """Every RUNPATH and RPATH entry."""
        return [entry for tag, value in self._dynamic if tag in (DT_RPATH, DT_RUNPATH) for entry in value.split(":")]

    @property
    def build_id(self) -> bytes:
        """The GNU build ID note's bytes (b"" for none)."""
        for section in self.sections:
            at, end = section.offset, section.offset + section.size
            while section.kind == SHT_NOTE and at + 12 <= end:
                namesz, descsz, kind = self._unpack("III", at)
                name_at = at + 12
                desc_at = name_at + (namesz + 3) // 4 * 4
                if kind == NT_GNU_BUILD_ID and self.data[name_at:name_at + namesz] == b"GNU\0":
                    return self.data[desc_at:desc_at + descsz]
                at = desc_at + (descsz + 3) // 4 * 4
        return b""

    @property
    def version_needs(self) -> Dict[str, List[str]]:
        """The symbol versions it needs of each library (GNU's version references): what the
        oldest C library it runs with must define, e.g. {"libc.so.6": ["GLIBC_2.25", …]}."""
        needs: Dict[str, List[str]] = {}
        for section in self.sections:
            if section.kind != SHT_GNU_VERNEED:
                continue
            strings, at = self.sections[section.link], section.offset
            while True:
                _, count, file, aux, following = self._unpack("HHIII", at)
                names = needs.setdefault(self._string(strings, file), [])
                entry = at + aux
                for _ in range(count):
                    _, _, _, name, after = self._unpack("IHHII", entry)
                    names.append(self._string(strings, name))
                    entry += after
                if not following:
                    break
                at += following
        return needs

    def symbols(self, kind: int = SHT_DYNSYM) -> List[Symbol]:
        """The symbols of the dynamic symbol table (or, with SHT_SYMTAB, of the full one)."""
        found = []
        for section in self.sections:
            if section.kind != kind:
                continue
            strings = self.sections[section.link]
            step = section.entsize or (24 if self.wide else 16)
            for at in range(section.offset + step, section.offset + section.size, step):  # entry 0 is null
                if self.wide:
                    name, info, other, shndx = self._unpack("IBBH", at)
                else:
                    name, info, other, shndx = self._unpack("I8xBBH", at)
                found.append(Symbol(self._string(strings, name), info >> 4, shndx != 0, other & 3))
        return found

    @property
    def exported(self) -> List[str]:
        """The names it exports: global or weak, defined, visible."""
        return [s.name for s in self.symbols() if s.external and s.defined and s.visibility in (0, 3)]


def read(path: Union[str, Path]) -> ELFFile:
    return ELFFile(Path(path).read_bytes(), str(path))


def is_elf(path: Path) -> bool:
    """A regular file (not a link) that starts as ELF does."""
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as f:
        return f.read(4) == MAGIC


def archive_members(path: Union[str, Path]) -> Iterator[Tuple[str, bytes]]:
    """The members of a static archive (ar, with GNU's long names), name and bytes."""
    data = Path(path).read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise ELFError(f"{path} is not a static archive")
    at, long_names = 8, b""
    while at + 60 <= len(data):
        header = data[at:at + 60]
        name, size = header[:16].decode().rstrip(), int(header[48:58].decode().strip() or 0)
        body = data[at + 60:at + 60 + size]
        at += 60 + size + (size & 1)
        if name == "//":
            long_names = body
        elif name.startswith("/") and name[1:].isdigit():
            start = int(name[1:])
            yield long_names[start:long_names.index(b"/\n", start)].decode(), body
        elif name not in ("/", "/SYM64/"):
            yield name.rstrip("/"), body


def defined_globals(archive: Union[str, Path]) -> set:
    """The global (and weak) symbols the objects of a static archive define."""
    names = set()
    for member, body in archive_members(archive):
        if body[:4] == MAGIC:
            elf = ELFFile(body, f"{archive}({member})")
            names.update(s.name for s in elf.symbols(SHT_SYMTAB) if s.external and s.defined)
    return names


def describe(path: Union[str, Path]) -> Dict[str, object]:
    """What `python -m build_httpd.elf FILE` prints: the fields the project reads."""
    elf = read(path)
    return {"machine": elf.machine, "interpreter": elf.interpreter, "soname": elf.soname, "needed": elf.needed,
            "runpaths": elf.runpaths, "build_id": elf.build_id.hex(),
            "version_needs": elf.version_needs}


if __name__ == "__main__":  # pragma: no cover - a look at a file by hand
    import json
    import sys
    for arg in sys.argv[1:]:
        print(json.dumps({arg: describe(arg)}))
