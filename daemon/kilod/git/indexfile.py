"""git's index file read directly: each entry's path, mode, blob and stat data, and its cached root tree.

The snapshot asks "which worktree files are still exactly what git checked out?" for
every file of the worktree; asking git to print its index as text and parsing that
cost more than the rest of a review. The binary format is small and documented
(git's Documentation/gitformat-index.txt): a header, the entries (versions 2, 3 and
4, the last with prefix-compressed paths), then extensions, of which only the cached
tree (`TREE`) is read here.

Anything this reader does not fully understand (a split or sparse index, an unknown
required extension, a truncated or corrupt file) is `None`: the caller then takes the
slow way, which trusts nothing. The file is read once; its bytes are what callers
hand to git (`Index.raw`), so git and kilod see the same index.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
from pathlib import Path
from typing import NamedTuple

_HEADER = struct.Struct(">4sLL")
_FLAGS = struct.Struct(">H")
_EXTENSION = struct.Struct(">4sL")
ASSUME_VALID = 0x8000                  # flags: `update-index --assume-unchanged` / core.ignoreStat
EXTENDED = 0x4000                      # flags: a second 16-bit word follows (v3+)
STAGE_MASK = 0x3000
SKIP_WORKTREE = 0x4000                 # extended flags: sparse checkout
INTENT_TO_ADD = 0x2000                 # extended flags: `git add -N`
S_IFMT = 0o170000
S_IFREG = 0o100000


class Entry(NamedTuple):
    """One entry as stored: stat data, the object id and the flags (a tuple: 20,000 of them are made per read)."""

    ctime_s: int
    ctime_ns: int
    mtime_s: int
    mtime_ns: int
    dev: int
    ino: int
    mode: int            # 0o100644, 0o100755, 0o120000, 0o160000
    uid: int
    gid: int
    size: int
    oid: bytes
    flags: int           # ASSUME_VALID, EXTENDED, the stage and the name's length

    @property
    def sha(self) -> str:
        return self.oid.hex()

    @property
    def regular(self) -> bool:
        return self.mode & S_IFMT == S_IFREG


class Index:
    """An index as read: its raw bytes, where each entry starts, and what the snapshot asks first.

    Reading walks the entries once, cheaply (a 20,000-entry index is read per review), noting
    only where each starts and the few that need a closer look; `get` finds one entry by binary
    search (entries are sorted by name), `entries` decodes them all when a caller needs every one.
    """

    def __init__(self, raw: bytes, mtime_ns: int, hash_size: int, version: int, offsets: list[int],
                 recent: list[int], flagged: list[int], cached_tree: str | None, unmerged: bool) -> None:
        self.raw = raw                    # the file as read: what callers hand to git
        self.mtime_ns = mtime_ns          # its mtime when read: entries changed at or after it are racily clean
        self.cached_tree = cached_tree    # the root tree the index holds, if git recorded it as valid
        self.unmerged = unmerged          # some entry is at stage 1-3
        self._hash_size = hash_size
        self._version = version
        self._offsets = offsets
        self._entry = struct.Struct(f">10L{hash_size}sH")
        self._recent = recent
        self._flagged = flagged

    def tree_is(self, tree: str) -> bool:
        """Whether the index holds exactly `tree` (by git's own cached tree, covering every entry)."""
        return self.cached_tree == tree and not self.unmerged

    def _at(self, offset: int) -> tuple[bytes, Entry, int]:
        """(name, entry, extended flags) of the entry starting at `offset` (versions 2 and 3)."""
        entry = Entry._make(self._entry.unpack_from(self.raw, offset))
        name_at = offset + self._entry.size
        extended = 0
        if entry.flags & EXTENDED:
            (extended,) = _FLAGS.unpack_from(self.raw, name_at)
            name_at += _FLAGS.size
        return self.raw[name_at:self.raw.index(b"\0", name_at)], entry, extended

    @functools.cached_property
    def _all(self) -> tuple[dict[str, Entry], dict[str, int]]:
        entries: dict[str, Entry] = {}
        flagged: dict[str, int] = {}
        for offset in self._offsets:
            name, entry, extended = self._at(offset)
            if entry.flags & STAGE_MASK:
                continue
            path = name.decode("utf-8", "surrogateescape")
            entries[path] = entry
            if entry.flags & ASSUME_VALID or extended:
                flagged[path] = (entry.flags & ASSUME_VALID) | (extended << 16)
        return entries, flagged

    @property
    def entries(self) -> dict[str, Entry]:
        """Every stage-0 entry, by path (surrogateescape text, as the git runner decodes names)."""
        return self._all[0]

    @property
    def flagged(self) -> dict[str, int]:
        """Paths whose entry is assume-unchanged, skip-worktree or intent-to-add: ASSUME_VALID | extended << 16."""
        if self._version == 4:
            return self._all[1]
        found = {}
        for offset in self._flagged:
            name, entry, extended = self._at(offset)
            if (entry.flags & ASSUME_VALID or extended) and not entry.flags & STAGE_MASK:
                found[name.decode("utf-8", "surrogateescape")] = (entry.flags & ASSUME_VALID) | (extended << 16)
        return found

    def recent(self) -> list[str]:
        """Paths recorded in or after the second the index was written (their ctime or mtime)."""
        if self._version == 4:
            limit = self.mtime_ns // 1_000_000_000
            return [p for p, e in self.entries.items() if e.ctime_s >= limit or e.mtime_s >= limit]
        return [self._at(offset)[0].decode("utf-8", "surrogateescape") for offset in self._recent]

    def get(self, path: str) -> Entry | None:
        """The stage-0 entry of `path`, or None."""
        if self._version == 4 or "_all" in self.__dict__:
            return self.entries.get(path)
        wanted = path.encode("utf-8", "surrogateescape")
        offsets, low, high = self._offsets, 0, len(self._offsets)
        while low < high:  # the first entry whose name is not below `wanted`
            middle = (low + high) // 2
            if self._at(offsets[middle])[0] < wanted:
                low = middle + 1
            else:
                high = middle
        if low < len(offsets):
            name, entry, _ = self._at(offsets[low])
            if name == wanted and not entry.flags & STAGE_MASK:
                return entry
        return None

    def __contains__(self, path: str) -> bool:
        return self.get(path) is not None

    def __len__(self) -> int:
        return len(self._offsets)


def read_index(path: Path, hash_size: int = 20) -> Index | None:
    """The index at `path`, or None if it is absent or not something this reader understands."""
    try:
        with open(path, "rb") as handle:
            mtime_ns = os.fstat(handle.fileno()).st_mtime_ns
            raw = handle.read()
    except OSError:
        return None
    try:
        return _walk(raw, mtime_ns, hash_size)
    except (struct.error, ValueError, IndexError):
        return None


def _walk(raw: bytes, mtime_ns: int, hash_size: int) -> Index | None:
    signature, version, count = _HEADER.unpack_from(raw, 0)
    if signature != b"DIRC" or version not in (2, 3, 4) or len(raw) < _HEADER.size + hash_size:
        return None
    end_of_entries = len(raw) - hash_size
    digest = hashlib.sha1 if hash_size == 20 else hashlib.sha256
    if raw[end_of_entries:] != b"\0" * hash_size and digest(raw[:end_of_entries]).digest() != raw[end_of_entries:]:
        return None  # torn or corrupt (git may write an all-zero checksum: index.skipHash)
    entry = struct.Struct(f">10L{hash_size}sH")
    limit = mtime_ns // 1_000_000_000
    offsets: list[int] = []
    recent: list[int] = []
    flagged: list[int] = []
    unmerged = False
    v4: tuple[dict[str, Entry], dict[str, int]] | None = None
    if version == 4:  # names are prefix-compressed: every one is decoded in turn
        entries, v4_flagged, offset, unmerged = _parse_v4(raw, count, entry)
        v4 = entries, v4_flagged
        offsets = list(range(count))   # only their number is used
    else:
        # the hot loop, a few operations an entry: ctime and mtime seconds and the flags, then the next entry
        # (the name's length is in the flags; 0xFFF means "at least that", so the NUL is looked for)
        peek = struct.Struct(f">L4xL{28 + hash_size}xH").unpack_from
        fixed = entry.size
        offset = _HEADER.size
        append = offsets.append
        for _ in range(count):
            ctime_s, mtime_s, flags = peek(raw, offset)
            append(offset)
            if flags & 0xF000 or ctime_s >= limit or mtime_s >= limit:
                if flags & STAGE_MASK:
                    unmerged = True
                if flags & EXTENDED and version < 3:
                    return None
                if flags & (ASSUME_VALID | EXTENDED):
                    flagged.append(offset)  # (an extended entry without flags set is checked, and costs nothing)
                if ctime_s >= limit or mtime_s >= limit:
                    recent.append(offset)
            name_at = offset + fixed + (2 if flags & EXTENDED else 0)
            length = flags & 0x0FFF
            if length == 0x0FFF:
                length = raw.index(b"\0", name_at) - name_at
            offset += (name_at - offset + length + 8) & ~7  # padded with 1-8 NULs to a multiple of 8 bytes
    cached_tree = None
    while offset + _EXTENSION.size <= end_of_entries:
        signature, size = _EXTENSION.unpack_from(raw, offset)
        data = raw[offset + _EXTENSION.size:offset + _EXTENSION.size + size]
        if signature[:1].islower():
            # a required extension (lower-case first letter) changes what the entries mean: a split index
            # (`link`) keeps them in another file, a sparse one (`sdir`) folds directories into one entry
            return None
        if signature == b"TREE":
            cached_tree = _root_tree(data, count, hash_size)
        offset += _EXTENSION.size + size
    if offset != end_of_entries:
        return None
    index = Index(raw, mtime_ns, hash_size, version, offsets, recent, flagged, cached_tree, unmerged)
    if v4 is not None:
        index.__dict__["_all"] = v4  # functools.cached_property's own slot: already computed
    return index


def _parse_v4(raw: bytes, count: int, entry: struct.Struct) -> tuple[dict[str, Entry], dict[str, int], int, bool]:
    """Version 4: (entries, flagged, where the extensions start, unmerged)."""
    entries: dict[str, Entry] = {}
    flagged: dict[str, int] = {}
    unmerged = False
    offset = _HEADER.size
    previous = b""
    for _ in range(count):
        found = Entry._make(entry.unpack_from(raw, offset))
        name_at = offset + entry.size
        extended = 0
        if found.flags & EXTENDED:
            (extended,) = _FLAGS.unpack_from(raw, name_at)
            name_at += _FLAGS.size
        strip, name_at = _varint(raw, name_at)
        end = raw.index(b"\0", name_at)
        if strip > len(previous):
            raise ValueError("a name strips more than the previous one has")
        previous = previous[:len(previous) - strip] + raw[name_at:end]
        offset = end + 1
        if found.flags & STAGE_MASK:
            unmerged = True
            continue
        path = previous.decode("utf-8", "surrogateescape")
        entries[path] = found
        if found.flags & ASSUME_VALID or extended:
            flagged[path] = (found.flags & ASSUME_VALID) | (extended << 16)
    return entries, flagged, offset, unmerged


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """git's offset varint (varint.c): 7 bits a byte, high bit continues, each continuation adds one."""
    byte = data[at]
    at += 1
    value = byte & 0x7F
    while byte & 0x80:
        byte = data[at]
        at += 1
        value = ((value + 1) << 7) | (byte & 0x7F)
    return value, at


def _root_tree(data: bytes, entry_count: int, hash_size: int) -> str | None:
    """The cached root tree if it is valid and covers all `entry_count` entries: `\\0<count> <subtrees>\\n<sha>`."""
    if not data.startswith(b"\0"):
        return None
    line_end = data.index(b"\n")
    count_text, _, _ = data[1:line_end].partition(b" ")
    count = int(count_text)
    if count != entry_count:  # -1: invalidated
        return None
    sha = data[line_end + 1:line_end + 1 + hash_size]
    return sha.hex() if len(sha) == hash_size else None
