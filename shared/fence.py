"""Reading a user's files: opened beneath a fence root, one component at a time, never by a
name that was checked earlier (decision 0010).

Every read of a file in an external library or the upload folder (the scanner's listings and
stats, the metadata worker's reads, downloads) opens it through a `Fence`. The fence root (the
owner's external path, or the upload folder) is opened once per lookup; each further component
is opened relative to the descriptor of its parent with `O_NOFOLLOW`, so a name swapped for a
symlink between a check and a read is met by the kernel, not followed. `..` never climbs above
the root. Only regular files are opened for reading (`O_NONBLOCK` first, then `fstat`), so a
FIFO, a device or a socket is refused without blocking.

Two ways to look a path up:

* `open_file` / `open_dir` / `stat` take a *real* path (what the scanner recorded: an asset's
  path, a folder of the index) and follow no symlink at all: a component that has become a
  symlink means the file is not there any more.
* `resolve` follows symlinks, but only while they stay beneath the root; it is for the scanner
  meeting a symlink in a listing, and gives the real path the asset is then known by.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from shared.paths import MAX_SYMLINKS, within

_CLOEXEC: Final = os.O_CLOEXEC
_STEP: Final = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
"""How an intermediate component is opened: a directory, itself, not what a link names."""
_FILE: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | _CLOEXEC
_DIR: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
_RETRIES: Final = 16
"""Times one component is looked at again when it changes between open and readlink."""
_LOOK: Final = os.O_PATH | os.O_NOFOLLOW | _CLOEXEC
"""For stat: O_PATH opens anything (a FIFO too) without reading it; a symlink opens as itself."""


class Escape(OSError):
    """Raised when a path, or a symlink on the way, leads outside the fence root."""

    def __init__(self, path: str) -> None:
        super().__init__(errno.EXDEV, "leads outside the external path", path)


class NotRegular(OSError):
    """Raised when a file to read is a FIFO, a device, a socket or a directory."""

    def __init__(self, path: str, mode: int) -> None:
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "a directory"
            if stat.S_ISDIR(mode)
            else "not a regular file"
        )
        super().__init__(errno.EINVAL, f"not a regular file ({kind})", path)


@dataclass(frozen=True, slots=True)
class Opened:
    """An open descriptor, the real path it was reached by, and what fstat said of it."""

    fd: int
    real: str
    st: os.stat_result

    @property
    def proc_path(self) -> str:
        """A name for the open file that libraries taking a path can open again: it names this
        very file (a magic link of /proc), whatever has happened to its path since."""
        return f"/proc/self/fd/{self.fd}"

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> Opened:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Fence:
    """Lookups beneath `root`, a real absolute path (an external path, or the upload folder)."""

    root: str

    @classmethod
    def of(cls, root: str) -> Fence:
        """The fence around `root` as an admin wrote it: its own symlinks are resolved once,
        here (the admin's setting is trusted; what lies beneath it is not)."""
        return cls(os.path.realpath(root))

    def contains(self, real: str) -> bool:
        """Whether a real path lies within the root, by name alone (no file system access)."""
        return within(self.root, real)

    def open_file(self, path: str) -> Opened:
        """Open a regular file by its real path for reading; raises NotRegular for anything
        else, Escape for a path outside the root, FileNotFoundError when it (or a folder on
        the way) is gone or has become a symlink."""
        opened = self._open(path, _FILE, follow=False)
        if not stat.S_ISREG(opened.st.st_mode):
            opened.close()
            raise NotRegular(path, opened.st.st_mode)
        return opened

    def open_dir(self, path: str) -> Opened:
        """Open a directory by its real path for listing (`os.scandir(opened.fd)`)."""
        return self._open(path, _DIR, follow=False)

    def stat(self, path: str) -> os.stat_result:
        """stat of a real path; a symlink (at the end or on the way) counts as not there."""
        with self._open(path, _LOOK, follow=False) as opened:
            return opened.st

    def resolve(self, path: str) -> tuple[str, os.stat_result]:
        """The real path of `path` and its stat, following symlinks that stay beneath the root.

        Raises Escape for a symlink that leaves it (or `..` above it), OSError(ELOOP) past
        Linux's 40 links, FileNotFoundError for a dangling link.
        """
        with self._open(path, _LOOK, follow=True) as opened:
            return opened.real, opened.st

    def _components(self, path: str) -> list[str]:
        if "\x00" in path:
            raise FileNotFoundError(errno.ENOENT, "embedded NUL byte", path)
        if not path.startswith("/") or not within(self.root, path.rstrip("/") or "/"):
            raise Escape(path)
        return path[len(self.root) :].split("/")

    def _open(self, path: str, final: int, *, follow: bool) -> Opened:
        pending = self._components(path)[::-1]  # a stack: next component last
        stack = [os.open(self.root, os.O_PATH | os.O_DIRECTORY | _CLOEXEC)]
        names: list[str] = []
        links = 0
        try:
            while True:
                while pending and pending[-1] in ("", "."):
                    pending.pop()
                if not pending:  # the path names the root, or a folder `..` led back to
                    fd = os.open(".", final & ~os.O_NOFOLLOW, dir_fd=stack[-1])
                    return self._finish(fd, names)
                name = pending.pop()
                if name == "..":
                    if len(stack) == 1:
                        raise Escape(path)
                    os.close(stack.pop())
                    names.pop()
                    continue
                last = all(p in ("", ".") for p in pending)
                fd, target = _step(stack[-1], name, final if last else _STEP)
                if target is not None:
                    if not follow:
                        raise FileNotFoundError(errno.ENOENT, "a symlink is in its place now", path)
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise OSError(errno.ELOOP, "Too many levels of symbolic links", path)
                    if target.startswith("/"):
                        tail = self._components(target)  # Escape unless beneath the root
                        while len(stack) > 1:
                            os.close(stack.pop())
                        names.clear()
                        pending.extend(tail[::-1])
                    else:
                        pending.extend(target.split("/")[::-1])
                    continue
                if last:
                    return self._finish(fd, [*names, name])
                stack.append(fd)
                names.append(name)
        finally:
            for fd in stack:
                os.close(fd)

    def _finish(self, fd: int, names: list[str]) -> Opened:
        try:
            st = os.fstat(fd)
        except OSError:
            os.close(fd)
            raise
        real = "/".join([self.root.rstrip("/"), *names]) if names else self.root
        return Opened(fd, real, st)


def _step(dir_fd: int, name: str, flags: int) -> tuple[int, str | None]:
    """Open one component beneath `dir_fd`: (fd, None), or (-1, target) when it is a symlink."""
    for _ in range(_RETRIES):
        try:
            fd = os.open(name, flags, dir_fd=dir_fd)
        except OSError as exc:
            # O_NOFOLLOW meets a symlink as ELOOP (the last component) or ENOTDIR (O_DIRECTORY).
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            target = _link_target(dir_fd, name)
            if target is not None:
                return -1, target
            if exc.errno == errno.ENOTDIR and not _is_dir(dir_fd, name):
                raise  # a file used as a folder: a real answer
            continue  # the name was a symlink a moment ago and is not now: look again
        if flags & os.O_PATH and not flags & os.O_DIRECTORY and stat.S_ISLNK(os.fstat(fd).st_mode):
            os.close(fd)  # O_PATH | O_NOFOLLOW opens a symlink as itself
            target = _link_target(dir_fd, name)
            if target is not None:
                return -1, target
            continue
        return fd, None
    raise OSError(errno.EAGAIN, "it keeps changing while it is opened", name)


def _is_dir(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _link_target(dir_fd: int, name: str) -> str | None:
    """What the symlink `name` in `dir_fd` names, or None when it is not a symlink."""
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOENT):
            return None
        raise


def chunks(opened: Opened, size: int = 1 << 20) -> Iterator[bytes]:
    """The file's bytes, up to the length fstat gave when it was opened: a file that keeps
    growing (or a sparse one grown past it later) is not followed further."""
    offset, end = 0, opened.st.st_size
    while offset < end:
        data = os.pread(opened.fd, min(size, end - offset), offset)
        if not data:
            return  # truncated since it was opened
        offset += len(data)
        yield data
