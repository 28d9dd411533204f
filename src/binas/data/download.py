"""Optional, user-facing download of CIFAR-10 (python version), checksummed and safely extracted.

Nothing in binas calls this implicitly: runs read local files only. The archive is verified against its
published md5 before extraction, and members that would land outside the target folder (absolute
paths, `..`, links, devices) are refused.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from binas.data.cifar import CIFAR10_FOLDER, CIFAR10_META_FILE, CIFAR10_TEST_FILES, CIFAR10_TRAIN_FILES
from binas.errors import DataError

logger = logging.getLogger(__name__)

# Official location and checksum, from https://www.cs.toronto.edu/~kriz/cifar.html
DEFAULT_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
KNOWN_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
CHUNK_BYTES = 1 << 20  # read/hash 1 MiB at a time
DOWNLOAD_TIMEOUT_S = 60.0


def _is_extracted(folder: Path) -> bool:
    expected = (*CIFAR10_TRAIN_FILES, *CIFAR10_TEST_FILES, CIFAR10_META_FILE)
    return all((folder / name).is_file() for name in expected)


def file_md5(path: Path) -> str:
    """Hex md5 of a file, read in chunks (md5 is the integrity check the data set publishes)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, dest: Path) -> None:
    """Stream `url` to `dest` through a temporary file, so an interrupted download leaves nothing."""
    partial = dest.with_name(dest.name + ".part")
    logger.info("downloading %s to %s", url, dest)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, partial.open("wb") as out:
            shutil.copyfileobj(response, out, CHUNK_BYTES)
    except (urllib.error.URLError, OSError, ValueError) as err:
        partial.unlink(missing_ok=True)
        raise DataError(f"cannot download {url}: {err}") from None
    os.replace(partial, dest)


def _safe_members(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    """All members, after checking that each is a plain file or folder that stays inside the target."""
    members = tar.getmembers()
    for member in members:
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts or member.name.startswith(("/", "\\")):
            raise DataError(f"unsafe path '{member.name}' in archive {archive}")
        if not (member.isfile() or member.isdir()):
            raise DataError(f"unsupported member '{member.name}' (link or device) in archive {archive}")
    return members


def _extract(archive: Path, root: Path) -> None:
    """Extract into a temporary folder under `root`, then move the data folder into place atomically."""
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = _safe_members(tar, archive)
                if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: a second, stdlib safety net
                    tar.extractall(staging, members=members, filter="data")
                else:  # pragma: no cover - older Pythons
                    tar.extractall(staging, members=members)
        except (tarfile.TarError, EOFError, OSError) as err:
            raise DataError(f"cannot extract archive {archive}: {err}") from None
        extracted = staging / CIFAR10_FOLDER
        if not _is_extracted(extracted):
            raise DataError(f"archive {archive} does not contain a complete '{CIFAR10_FOLDER}' folder")
        target = root / CIFAR10_FOLDER
        if target.exists():
            shutil.rmtree(target)
        os.replace(extracted, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def download_cifar10(root: str | Path, url: str = DEFAULT_URL, md5: str = KNOWN_MD5) -> Path:
    """Make sure `root/cifar-10-batches-py` exists; download, verify and extract it if not.

    Skips everything when the folder is already complete, and skips the download when a previously
    fetched archive in `root` has the right md5. A checksum mismatch deletes the archive and raises
    `DataError`. Returns the `cifar-10-batches-py` path, ready for `load_dataset("cifar10", data_dir=...)`.
    """
    root = Path(root).expanduser()
    target = root / CIFAR10_FOLDER
    if _is_extracted(target):
        logger.info("cifar10 already present in %s", target)
        return target
    root.mkdir(parents=True, exist_ok=True)
    archive = root / ARCHIVE_NAME
    if not (archive.is_file() and file_md5(archive) == md5.lower()):
        _fetch(url, archive)
        actual = file_md5(archive)
        if actual != md5.lower():
            archive.unlink(missing_ok=True)
            raise DataError(f"checksum mismatch for {url}: md5 {actual}, expected {md5}")
    _extract(archive, root)
    logger.info("cifar10 extracted to %s", target)
    return target
