"""Reading .tar.gz archives (GitHub's branch/commit archives) without trusting their member names."""
from __future__ import annotations

import tarfile
from pathlib import PurePosixPath


class UnsafeArchive(ValueError):
    pass


def _checked_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise UnsafeArchive(f"archive member escapes the target: {name!r}")
    return path


def read_text_members(archive: str, suffixes: tuple[str, ...]) -> dict[str, bytes]:
    """Return {path below the archive's single top folder: bytes} for regular files ending in `suffixes`.

    Every member is checked, not just the ones we keep: an absolute path, a `..`, or a link
    pointing outside the archive means the archive is refused as a whole.
    """
    files: dict[str, bytes] = {}
    with tarfile.open(archive, "r:*") as tar:
        for member in tar.getmembers():
            path = _checked_name(member.name)
            if member.issym() or member.islnk():
                target = PurePosixPath(member.linkname)
                # a symlink resolves from its own folder, a hard link from the archive root
                resolved = target if member.islnk() else path.parent / target
                if target.is_absolute() or _escapes(resolved):
                    raise UnsafeArchive(f"archive link escapes the target: {member.name!r} -> {member.linkname!r}")
                continue
            if not member.isfile() or not member.name.endswith(suffixes):
                continue
            inner = PurePosixPath(*path.parts[1:])  # GitHub archives have one top folder
            f = tar.extractfile(member)
            if f is not None:
                files[str(inner)] = f.read()
    return files


def _escapes(path: PurePosixPath) -> bool:
    depth = 0
    for part in path.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return True
    return False
