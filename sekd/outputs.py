"""Writing files without losing any. Every file sekd writes goes through `atomic_path`, and
every command that writes checks its outputs first with `check_outputs`.

A write goes to a hidden temporary file beside its target (same folder, so the same file
system) and is renamed into place only once it is complete: a full disk, an error or an
interrupt (Ctrl-C, SIGTERM: see `exit_cleanly_on_sigterm`) leaves the old file, or nothing,
under the final name, never a partial one. A rename replaces a symbolic link itself, never the
file it points to.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL = ".partial"  # in the name of every temporary file, so a user can tell what it is


def partial_path(path: Path) -> Path:
    """The temporary name a write of `path` uses: hidden, this process's, the suffix kept (so
    libraries that pick a format by extension still do)."""
    return path.with_name(f".{path.name}.{os.getpid()}{PARTIAL}{path.suffix}")


def _move_into_place(tmp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:  # a hard link fails if `path` exists, at the moment of the write (no race)
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(
            f"{path} exists already (written since this command checked?); it was left as it is"
        ) from None
    except OSError as exc:  # a file system without hard links
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(path):
            raise FileExistsError(f"{path} exists already; it was left as it is") from None
        os.replace(tmp, path)


@contextmanager
def atomic_path(path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write `path` into; when the block ends without an error the
    file becomes `path` in one rename, otherwise it is removed. `overwrite=False` refuses an
    existing `path` (FileExistsError) even when another process wrote it after the caller's
    own check."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    try:
        yield tmp
        _move_into_place(tmp, path, overwrite)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path, text: str, overwrite: bool = True) -> Path:
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(text)
    return Path(path)


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_outputs(
    outputs: Iterable,
    overwrite: bool,
    inputs: Iterable = (),
    may_replace_inputs: bool = False,
    protected_folders: Iterable = (),
    flag: str = "--overwrite",
    hint: str = "",
) -> None:
    """Refuse, before anything is written or computed, outputs that would lose something:
    two outputs with one path; an output that is a folder or a symbolic link (sekd does not
    write through links); one that is one of `inputs` (unless `may_replace_inputs`); one inside
    a `protected_folders` entry; and, without `overwrite`, those that exist (named together,
    with `hint` saying what else the command offers). Errors name the paths and say what to
    do."""
    outputs = [Path(p) for p in outputs]
    seen: dict[Path, Path] = {}
    sources = {Path(p).resolve() for p in inputs}
    protected = [Path(p).resolve() for p in protected_folders]
    for out in outputs:
        real = out.resolve()
        if real in seen:
            raise ValueError(f"{seen[real]} and {out} are the same file: give each its own path")
        seen[real] = out
        if out.is_symlink():
            raise ValueError(
                f"{out} is a symbolic link (to {os.readlink(out)}); sekd does not write through "
                "links: remove it or choose another output"
            )
        if out.is_dir():
            raise IsADirectoryError(f"{out} is a folder, not a file")
        for folder in protected:
            if _is_within(real, folder):
                raise ValueError(f"{out} is inside {folder}, which this command reads from")
        if real in sources and not may_replace_inputs:
            raise FileExistsError(f"{out} is one of this command's input files; choose another")
    existing = [o for o in outputs if o.exists() and o.resolve() not in sources]
    if existing and not overwrite:
        raise FileExistsError(_exist_already(existing, flag, hint))


def _exist_already(existing: list[Path], flag: str, hint: str, most: int = 5) -> str:
    if len(existing) == 1:
        return f"{existing[0]} exists already; choose another, or pass {flag}{hint}"
    more = f" ... ({len(existing)} in all)" if len(existing) > most else ""
    named = ", ".join(map(str, existing[:most])) + more
    return (
        f"{len(existing)} output files exist already ({named}); choose other outputs, or pass "
        f"{flag}{hint}"
    )


def check_writable(folder) -> None:
    """Make `folder` (and its parents) and write a probe file in it, so that a command fails
    before its work, not after it, when its output cannot be written."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".sekd-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise PermissionError(f"{folder} cannot be written ({exc.strerror})") from None


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so that `atomic_path` removes its temporary file (Python's
    default for SIGTERM ends the process at once, skipping every clean-up)."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
