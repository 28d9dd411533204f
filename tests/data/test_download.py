"""download_cifar10 against a local archive (file:// URL): checksum, safe extraction, skip when present."""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
from pathlib import Path

import pytest

from binas.data import download_cifar10, load_dataset
from binas.errors import DataError


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


@pytest.fixture
def archive(cifar_root: Path, tmp_path: Path) -> Path:
    """A cifar-10-python.tar.gz holding the fake `cifar-10-batches-py` folder."""
    path = tmp_path / "mirror" / "cifar-10-python.tar.gz"
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as tar:
        tar.add(cifar_root / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return path


def test_download_verify_extract_then_skip(archive: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    folder = download_cifar10(root, url=archive.as_uri(), md5=_md5(archive))
    assert folder == root / "cifar-10-batches-py"
    assert len(load_dataset("cifar10", "test", data_dir=str(root))) > 0
    assert not [p for p in root.iterdir() if p.name.startswith(".extract-") or p.suffix == ".part"]
    archive.unlink()  # a second call must not touch the URL at all
    assert download_cifar10(root, url=archive.as_uri(), md5="0" * 32) == folder


def test_existing_archive_is_reused(archive: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(archive, root / "cifar-10-python.tar.gz")
    folder = download_cifar10(root, url=(tmp_path / "offline.tar.gz").as_uri(), md5=_md5(archive))
    assert (folder / "test_batch").is_file()


def test_checksum_mismatch(archive: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    with pytest.raises(DataError, match="checksum mismatch"):
        download_cifar10(root, url=archive.as_uri(), md5="0" * 32)
    assert not (root / "cifar-10-python.tar.gz").exists() and not (root / "cifar-10-batches-py").exists()


def test_unreachable_url(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot download"):
        download_cifar10(tmp_path / "data", url=(tmp_path / "absent.tar.gz").as_uri(), md5="0" * 32)


def _archive_with(path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


@pytest.mark.parametrize(
    "member",
    [
        tarfile.TarInfo("../escape.txt"),
        tarfile.TarInfo("/tmp/absolute.txt"),
        tarfile.TarInfo("cifar-10-batches-py/../../escape.txt"),
    ],
)
def test_unsafe_paths_are_refused(tmp_path: Path, member: tarfile.TarInfo) -> None:
    bad = _archive_with(tmp_path / "bad.tar.gz", member)
    root = tmp_path / "data"
    with pytest.raises(DataError, match="unsafe path"):
        download_cifar10(root, url=bad.as_uri(), md5=_md5(bad))
    assert not (tmp_path / "escape.txt").exists() and not (root / "cifar-10-batches-py").exists()


def test_links_are_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    bad = _archive_with(tmp_path / "bad.tar.gz", link)
    with pytest.raises(DataError, match="link or device"):
        download_cifar10(tmp_path / "data", url=bad.as_uri(), md5=_md5(bad))


def test_archive_without_cifar_folder(tmp_path: Path) -> None:
    bad = _archive_with(tmp_path / "other.tar.gz", tarfile.TarInfo("readme.txt"))
    with pytest.raises(DataError, match="does not contain a complete"):
        download_cifar10(tmp_path / "data", url=bad.as_uri(), md5=_md5(bad))


def test_corrupt_archive(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.tar.gz"
    bad.write_bytes(b"not a gzip file")
    with pytest.raises(DataError, match="cannot extract"):
        download_cifar10(tmp_path / "data", url=bad.as_uri(), md5=_md5(bad))
