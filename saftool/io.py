"""Reading and writing records: JSONL (or an Alpaca-style JSON array) in, JSONL out.

* `-` means stdin/stdout.
* Reading streams line by line and validates each record; a bad line raises `InputError` naming
  FILE:LINE: FIELD. UTF-8 BOMs and CRLF line ends are accepted.
* Writing a file is atomic: records go to a temporary file beside the target, which is renamed into
  place only once everything was written, so a failed or interrupted write leaves no file at all.
  The file gets the mode `open()` would give it (0666 less the umask, or the mode of the file it
  replaces), not the 0600 of a temporary file, so a store shared with a group stays readable.
* Appending (for resumable stages) writes whole lines and drops a torn last line left by a kill.
* `output_lock` keeps two processes from writing one output at once (see its docstring).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TextIO, TypeVar

from pydantic import BaseModel, ValidationError

from saftool.errors import InputError, UsageError

T = TypeVar("T", bound=BaseModel)

STDIO = "-"


def display_name(src: str | Path) -> str:
    return "<stdin>" if str(src) == STDIO else str(src)


def _validation_to_input_error(name: str, line: int, exc: ValidationError) -> InputError:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    return InputError(name, line, field, first["msg"])


def _open_binary(src: str | Path) -> IO[bytes]:
    if str(src) == STDIO:
        return sys.stdin.buffer
    path = Path(src)
    if not path.exists():
        raise InputError(str(path), None, None, "no such file")
    if path.is_dir():
        raise InputError(str(path), None, None, "is a directory, expected a JSONL or JSON file")
    return open(path, "rb")


def iter_json_objects(src: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each record of a JSONL file or a JSON array."""
    name = display_name(src)
    fh = _open_binary(src)
    try:
        first_line = fh.readline()
        if first_line.startswith(b"\xef\xbb\xbf"):
            first_line = first_line[3:]
        if first_line.lstrip().startswith(b"["):
            yield from _iter_json_array(name, first_line + fh.read())
            return
        lineno = 0
        for raw in _chain_first(first_line, fh):
            lineno += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(name, lineno, None, f"not valid UTF-8 (byte {exc.start})") from None
            text = text.strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(name, lineno, None, f"invalid JSON: {exc.msg} at column {exc.colno}") from None
            if not isinstance(obj, dict):
                raise InputError(name, lineno, None, f"expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()


def _chain_first(first: bytes, fh: IO[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from fh


def _iter_json_array(name: str, data: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    """Walk a JSON array element by element so each error still names its line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(name, line, None, f"not valid UTF-8 (byte {exc.start})") from None
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    line = 1 + text.count("\n", 0, pos)
    scanned = pos

    def skip_ws(p: int) -> int:
        while p < len(text) and text[p] in " \t\r\n":
            p += 1
        return p

    pos = skip_ws(pos)
    if pos < len(text) and text[pos] == "]":
        return
    while True:
        pos = skip_ws(pos)
        line += text.count("\n", scanned, pos)
        scanned = pos
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise InputError(name, exc.lineno, None, f"invalid JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(obj, dict):
            raise InputError(name, line, None, f"expected a JSON object, got {type(obj).__name__}")
        yield line, obj
        pos = skip_ws(end)
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        if pos < len(text) and text[pos] == "]":
            return
        err_line = 1 + text.count("\n", 0, pos)
        raise InputError(name, err_line, None, "invalid JSON: expected ',' or ']' in array")


def read_records(src: str | Path, model: type[T], *, unique: str | None = "id") -> Iterator[T]:
    """Stream validated records of `model` from a file or `-`.

    `unique` names a field whose values must not repeat (duplicate ids are an error); pass None to
    allow repeats or for models without ids.
    """
    name = display_name(src)
    seen: set[Any] = set()
    check_unique = unique is not None and unique in model.model_fields
    for lineno, obj in iter_json_objects(src):
        try:
            record = model.model_validate(obj)
        except ValidationError as exc:
            raise _validation_to_input_error(name, lineno, exc) from None
        if check_unique:
            key = getattr(record, unique)
            if key in seen:
                raise InputError(name, lineno, unique, f"duplicate value {key!r}")
            seen.add(key)
        yield record


def to_json_line(record: BaseModel | dict[str, Any]) -> str:
    if isinstance(record, BaseModel):
        return record.model_dump_json()
    return json.dumps(record, ensure_ascii=False)


def current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it (another thread may be creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o22)  # elsewhere the only way to read it is to set it, then put it back at once
    os.umask(mask)
    return mask


def _open_mode(path: Path) -> int:
    """The permission bits `open(path, "w")` would leave: the old file's, else 0666 less the umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~current_umask()


@contextmanager
def atomic_open(dst: str | Path, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside `dst`; rename it onto `dst` only if the block succeeds."""
    path = Path(dst)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
            os.fchmod(fd, _open_mode(path))  # mkstemp creates 0600 whatever the umask
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_records(records: Iterable[BaseModel | dict[str, Any]], dst: str | Path) -> int:
    """Write records as JSONL to a file (atomically) or to stdout for `-`. Returns the count."""
    count = 0
    if str(dst) == STDIO:
        out = sys.stdout
        for record in records:
            out.write(to_json_line(record) + "\n")
            count += 1
        out.flush()
        return count
    with atomic_open(dst) as fh:
        for record in records:
            fh.write(to_json_line(record) + "\n")
            count += 1
    return count


def write_json(obj: BaseModel | dict[str, Any], dst: str | Path) -> None:
    """Write one JSON document (a manifest, a run record) atomically, pretty-printed."""
    text = obj.model_dump_json(indent=2) if isinstance(obj, BaseModel) else json.dumps(obj, indent=2)
    with atomic_open(dst) as fh:
        fh.write(text + "\n")


def read_json(src: str | Path, model: type[T]) -> T:
    path = Path(src)
    try:
        return model.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise InputError(str(path), None, None, "no such file") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise InputError(str(path), None, field, first["msg"]) from None


class JsonlAppender:
    """Append records to a JSONL file in whole, flushed lines, for stages that resume.

    The file is opened at the first non-empty write, so a stage that fails before it has an answer
    (a card too small for the cache, a bad option found late) leaves no empty file behind. Opening
    repairs the file first: a line torn by a kill (no trailing newline) is cut off, so a resumed run
    neither reads half a record nor glues a new one onto it.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fh: TextIO | None = None

    def write(self, records: Iterable[BaseModel | dict[str, Any]]) -> int:
        lines = [to_json_line(r) + "\n" for r in records]
        if not lines:
            return 0
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            repair_tail(self.path)
            self._fh = open(self.path, "a", encoding="utf-8")
        self._fh.write("".join(lines))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return len(lines)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def repair_tail(path: Path) -> None:
    """Cut a trailing partial line (one not ended by a newline) from `path`, if any."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        size = fh.seek(0, os.SEEK_END)
        block = 1 << 16
        pos = size
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            chunk = fh.read(pos - start)
            idx = chunk.rfind(b"\n")
            if idx >= 0:
                fh.truncate(start + idx + 1)
                return
            pos = start
        fh.truncate(0)


def lock_path(output: Path) -> Path:
    """The lock file of an output: hidden beside it, so no listing of the store sees it."""
    return output.parent / f".{output.name}.lock"


# errors of a filesystem that takes no locks at all (Lustre without -o flock, NFS mounted with nolock
# and no local_lock, some FUSE filesystems)
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


@contextmanager
def output_lock(output: str | Path, *, wait: bool) -> Iterator[None]:
    """Hold the advisory lock of `output` (`.NAME.lock` beside it) while the block writes it.

    A second process that asks for the lock of an output being written either waits (`wait`: a
    resumable stage, which then skips what the first one wrote) or stops with a `UsageError` naming
    the holder by pid and host (a stage that would redo costly work). The lock is `flock(2)` on the
    lock file, which also records its holder; the kernel drops it when the holder's process ends,
    however it ends, so a killed run never leaves a stale lock. The file stays: removing it would let
    a process that opened the old file and one that creates a new one hold "the" lock at once.

    On NFS, Linux (since 2.6.12) emulates `flock` with a POSIX byte-range lock over the whole file,
    which the server arbitrates (NLM for NFSv3, the protocol's own locks for NFSv4), so it holds
    between hosts; a client that crashes or loses its lease (NFSv4: about 90 s) loses the lock. A
    mount with `local_lock=flock` or `=all` (or NFSv3 with `nolock`) keeps locks on one host only,
    and Lustre takes them only when mounted with `-o flock`. A filesystem that refuses locks gets a
    warning and the write goes ahead unlocked, as before locks existed.
    """
    path = lock_path(Path(output))
    path.parent.mkdir(parents=True, exist_ok=True)
    # read-write: NFS's emulation needs a file open for writing to take an exclusive lock
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        locked = _take_lock(fd, path, output, wait)
        if locked:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode(), 0)
        try:
            yield
        finally:
            if locked:
                os.ftruncate(fd, 0)  # released: no holder to name (closing the file drops the lock)
    finally:
        os.close(fd)


def _take_lock(fd: int, path: Path, output: str | Path, wait: bool) -> bool:
    """Lock `fd` (waiting, or refusing, when another process holds it); False where locks are unsupported."""
    import fcntl

    from saftool import console

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _lock_holder(fd)
        if not wait:
            raise UsageError(
                f"{output} is being written by {holder} (lock {path}); wait for it to end, or stop it"
            ) from None
        console.info(f"{output} is being written by {holder}; waiting for it to end (lock {path})")
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as exc:
        if exc.errno not in _NO_LOCKS:
            raise
        console.warn(f"the filesystem of {path} takes no locks ({exc.strerror}): a second process "
                     f"writing {output} at the same time would not be stopped")
        return False
    return True


def _lock_holder(fd: int) -> str:
    """Who holds a lock, as its holder wrote it ("pid 12 on host a"); it may not have written it yet."""
    try:
        text = os.pread(fd, 256, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "another process"
