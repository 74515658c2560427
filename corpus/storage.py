"""Local paths and fsspec URLs behind one small interface, as datatrove's `DataFolder` does.

Inputs, outputs and `--dedup-against` corpora may be local paths or URLs: `s3://bucket/key`,
`gs://...`, `hf://datasets/org/name/...`, `file:///abs/path`, `memory://...` (anything fsspec knows;
s3:// needs `s3fs`, gs:// `gcsfs`, hf:// `huggingface_hub`). Credentials and endpoints come from the
usual places of each file system (for S3: `AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL_S3`, ~/.aws/...).

Everything here takes and returns plain strings; local paths stay local paths (read with the
built-in `open`, which is faster than going through fsspec).
"""
from __future__ import annotations

import io
import os
import posixpath
from dataclasses import dataclass


def is_url(path: str | os.PathLike) -> bool:
    return "://" in str(path)


def is_remote(path: str | os.PathLike) -> bool:
    """A URL that is not a local file (file:// URLs are local)."""
    return is_url(path) and not str(path).startswith("file://")


def local_path(path: str | os.PathLike) -> str:
    """`file:///x` -> `/x`; local paths unchanged. Only for paths that are not remote."""
    path = str(path)
    return path[len("file://"):] if path.startswith("file://") else path


def fs_and_path(url: str):
    """(fsspec file system, path inside it) for a URL or a local path."""
    from fsspec.core import url_to_fs

    return url_to_fs(str(url))


def join(root: str, *parts: str) -> str:
    """`root/part/...` for local paths and URLs alike (URLs always use `/`)."""
    if is_remote(root):
        return posixpath.join(root.rstrip("/"), *parts)
    return os.path.join(local_path(root), *parts)


def parent(path: str) -> str:
    return posixpath.dirname(path.rstrip("/")) if is_remote(path) else os.path.dirname(os.path.abspath(local_path(path)))


def open_file(path: str, mode: str = "rb"):
    """Open a local path with `open`, a URL with fsspec (remote files are read in large blocks)."""
    if not is_remote(path):
        return open(local_path(path), mode)
    fs, inner = fs_and_path(path)
    f = fs.open(inner, mode)
    if mode == "rb" and not isinstance(f, (io.BufferedReader, io.BytesIO)):
        f = io.BufferedReader(f)  # readline(limit), which fsspec's files lack (bounded reading of long lines)
    return f


@dataclass(frozen=True)
class Entry:
    """One file found under an input: its root (the folder given, or the file's folder), full path, size."""

    root: str
    path: str
    size: int
    given: bool = False  # the input named this file itself (not a folder holding it)

    @property
    def relative(self) -> str:
        """The file's name relative to its root, with `/` (names documents: `source`, default ids). Bytes of
        a local name that are not UTF-8 are written as `\\xNN`, so the name can be stored and shown."""
        if is_remote(self.root):
            return self.path[len(self.root.rstrip("/")) + 1:]
        relative = os.path.relpath(self.path, self.root).replace(os.sep, "/")
        return relative.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def unique_names(entries: list[Entry]) -> list[Entry]:
    """The entries of several inputs with names unique among them: when two files of different inputs have
    the same name relative to their inputs (a/x.jsonl, b/x.jsonl), every file is named relative to the
    inputs' common folder instead (a/x.jsonl, b/x.jsonl as given)."""
    roots = {e.root for e in entries}
    if len(roots) < 2 or len({e.relative for e in entries}) == len({e.path for e in entries}):
        return entries
    if any(is_remote(r) for r in roots):
        schemes = {r.split("://", 1)[0] for r in roots}
        if len(schemes) > 1:
            return entries  # inputs on different file systems: no common root
        scheme = schemes.pop()
        root = scheme + "://" + posixpath.commonpath([r.split("://", 1)[1] for r in roots])
    else:
        root = os.path.commonpath(sorted(roots))
    return [Entry(root, e.path, e.size, e.given) for e in entries]


class NotFound(Exception):
    pass


def find_files(path: str) -> list[Entry]:
    """Every file at or under `path`, sorted by relative name (the same order locally and remotely).

    Raises NotFound when nothing is there."""
    if not is_remote(path):
        path = os.path.abspath(local_path(path))
        if os.path.isfile(path):
            return [Entry(os.path.dirname(path), path, os.path.getsize(path), given=True)]
        if not os.path.isdir(path):
            raise NotFound(path)
        found, seen = [], set()
        for folder, subfolders, names in os.walk(path, followlinks=True):
            real = os.path.realpath(folder)
            if real in seen:  # a symlink loop (or a second link to a folder already read)
                subfolders.clear()
                continue
            seen.add(real)
            for name in names:
                full = os.path.join(folder, name)
                if os.path.isfile(full):
                    found.append(Entry(path, full, os.path.getsize(full)))
        return sorted(found, key=lambda e: e.relative)
    fs, inner = fs_and_path(path)
    if fs.isfile(inner):
        return [Entry(parent(path), path, int(fs.size(inner)), given=True)]
    if not fs.isdir(inner):
        raise NotFound(path)
    root = path.rstrip("/")
    inner = inner.rstrip("/")
    found = []
    for name, info in fs.find(inner, detail=True).items():
        if info.get("type") == "directory":
            continue
        rel = name[len(inner) + 1:] if name.startswith(inner + "/") else name.lstrip("/")
        found.append(Entry(root, f"{root}/{rel}", int(info.get("size") or 0)))
    return sorted(found, key=lambda e: e.relative)
