"""Durable file-system writes: fsync of files and folders, atomic text writes, removal, free space.

A file written with :func:`write_text_atomic` is complete or absent, even after a crash: the text goes to
``path + PARTIAL_SUFFIX``, is flushed to disk, and is renamed over ``path``.
"""
import os
import os.path as osp
import shutil

# Suffix of a file being written; a file with it is incomplete (an interrupted save leaves it behind).
PARTIAL_SUFFIX = '.partial'


def fsync_dir(directory: str) -> None:
    """Flush the entries of ``directory`` to disk (a no-op where the file system cannot)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems do not fsync directories
        pass
    finally:
        os.close(fd)


def fsync_path(path: str) -> None:
    """Flush a file, or every file of a directory, and the entries of its parent directory, to disk."""
    paths = [path] if osp.isfile(path) else [osp.join(root, f) for root, _, files in os.walk(path) for f in files]
    for name in paths:
        with open(name, 'rb') as f:
            os.fsync(f.fileno())
    fsync_dir(osp.dirname(osp.abspath(path)))


def remove_path(path: str) -> None:
    """Remove a file, link or directory tree; nothing happens when ``path`` does not exist."""
    if osp.isdir(path) and not osp.islink(path):
        shutil.rmtree(path)
    elif osp.lexists(path):
        os.remove(path)


def free_space(directory: str) -> str:
    """Free space on the file system of ``directory``, e.g. '1.2 GB free', or 'free space unknown'."""
    try:
        return f'{shutil.disk_usage(directory).free / 1e9:.2f} GB free'
    except OSError:
        return 'free space unknown'


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through ``path + PARTIAL_SUFFIX``, fsync and rename."""
    tmp = path + PARTIAL_SUFFIX
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(osp.dirname(osp.abspath(path)))
