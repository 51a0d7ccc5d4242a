"""Path names and file text from a worktree, for people and for JSON.

On disk a name is bytes, and an agent picks them: `bad\\xffname` is a legal file
name that is not UTF-8. Inside kilod a name is a `str` whose undecodable bytes are
kept as surrogates (`surrogateescape`, as `os.fsdecode` does), so it round-trips to
git and the filesystem exactly. At the edges it becomes one of:

- `shown(name)`: what people read, UTF-8 as it is and each other byte as `\\xNN`
  (JSON strings and terminals cannot carry the raw bytes);
- `exact(name)`: the bytes themselves, base64, for a client that must name the file.

File content (diff lines) is text for people only: bytes that are not UTF-8 show as
U+FFFD there, while the unified diff (`format=text`) carries git's bytes unchanged.
"""

from __future__ import annotations

import base64

ENCODING = "utf-8"
ERRORS = "surrogateescape"


def raw(name: str) -> bytes:
    return name.encode(ENCODING, ERRORS)


def shown(name: str) -> str:
    """The name as people see it: valid UTF-8 as is, every other byte as `\\xNN`."""
    return raw(name).decode(ENCODING, "backslashreplace")


def exact(name: str) -> str:
    """The name's bytes, base64."""
    return base64.b64encode(raw(name)).decode("ascii")


def readable(text: str) -> str:
    """Text read from git with surrogateescape, made safe for JSON: undecodable bytes become U+FFFD."""
    return raw(text).decode(ENCODING, "replace")
