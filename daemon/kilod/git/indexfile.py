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

import hashlib
import os
import struct
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Index:
    raw: bytes                    # the file as read
    mtime_ns: int                 # the file's mtime when read: entries changed at or after it are racily clean
    entries: dict[str, Entry]     # stage 0, by path (surrogateescape text, as the git runner decodes names)
    flagged: dict[str, int]       # paths whose entry is assume-unchanged, skip-worktree or intent-to-add:
                                  # ASSUME_VALID | extended flags << 16
    cached_tree: str | None       # the root tree the index holds, if git recorded it as valid
    unmerged: bool                # some entry is at stage 1-3

    def tree_is(self, tree: str) -> bool:
        """Whether the index holds exactly `tree` (by git's own cached tree, covering every entry)."""
        return self.cached_tree == tree and not self.unmerged


def read_index(path: Path, hash_size: int = 20) -> Index | None:
    """The index at `path`, or None if it is absent or not something this reader understands."""
    try:
        with open(path, "rb") as handle:
            mtime_ns = os.fstat(handle.fileno()).st_mtime_ns
            raw = handle.read()
    except OSError:
        return None
    try:
        return _parse(raw, mtime_ns, hash_size)
    except (struct.error, ValueError, IndexError):
        return None


def _parse(raw: bytes, mtime_ns: int, hash_size: int) -> Index | None:
    signature, version, count = _HEADER.unpack_from(raw, 0)
    if signature != b"DIRC" or version not in (2, 3, 4) or len(raw) < _HEADER.size + hash_size:
        return None
    body = raw[:-hash_size]
    digest = hashlib.sha1 if hash_size == 20 else hashlib.sha256
    if raw[-hash_size:] != b"\0" * hash_size and digest(body).digest() != raw[-hash_size:]:
        return None  # torn or corrupt (git may write an all-zero checksum: index.skipHash)
    fixed = struct.Struct(f">10L{hash_size}sH")
    unpack, find, make = fixed.unpack_from, body.index, Entry._make
    entries: dict[str, Entry] = {}
    flagged: dict[str, int] = {}
    unmerged = False
    offset = _HEADER.size
    previous = b""
    for _ in range(count):  # the hot loop: kept to a few calls per entry
        entry = make(unpack(body, offset))
        flags = entry.flags
        name_at = offset + fixed.size
        extended = 0
        if flags & EXTENDED:
            if version < 3:
                return None
            (extended,) = _FLAGS.unpack_from(body, name_at)
            name_at += _FLAGS.size
        if version == 4:
            strip, name_at = _varint(body, name_at)
            end = find(b"\0", name_at)
            if strip > len(previous):
                return None
            name = previous[:len(previous) - strip] + body[name_at:end]
            previous = name
            offset = end + 1
        else:
            end = find(b"\0", name_at)
            name = body[name_at:end]
            offset += (end - offset + 8) & ~7  # entries are padded with 1-8 NULs to a multiple of 8 bytes
        if flags & STAGE_MASK:
            unmerged = True
            continue
        path = name.decode("utf-8", "surrogateescape")
        entries[path] = entry
        if flags & ASSUME_VALID or extended:
            flagged[path] = (flags & ASSUME_VALID) | (extended << 16)
    cached_tree = None
    while offset + _EXTENSION.size <= len(body):
        signature, size = _EXTENSION.unpack_from(body, offset)
        data = body[offset + _EXTENSION.size:offset + _EXTENSION.size + size]
        if signature[:1].islower():
            # a required extension (lower-case first letter) changes what the entries mean: a split index
            # (`link`) keeps them in another file, a sparse one (`sdir`) folds directories into one entry
            return None
        if signature == b"TREE":
            cached_tree = _root_tree(data, len(entries), hash_size)
        offset += _EXTENSION.size + size
    if offset != len(body):
        return None
    return Index(raw, mtime_ns, entries, flagged, cached_tree, unmerged)


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
