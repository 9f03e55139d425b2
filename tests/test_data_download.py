"""Fashion-MNIST downloads that verify and a data cache that heals (issue 16): the source is HTTPS and
pinned, a corrupt or truncated cached file is fetched again, and a download that does not match the
published hashes is refused and never lands. A local HTTP server stands in for the mirror."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import logging
import shutil
import threading
from pathlib import Path

import pytest

from conftest import SLICE
from edgekit.errors import EdgekitError
from edgekit.fileio import download_verified
from test_cache import warnings_of


@pytest.fixture
def server():
    """A local HTTP server of the files in state["dir"] (a test may point it elsewhere); it records the
    names asked for in state["hits"]."""
    state: dict = {"dir": SLICE, "hits": []}

    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path):
            state["hits"].append(path.rsplit("/", 1)[-1])
            return str(Path(state["dir"]) / path.rsplit("/", 1)[-1])

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(SLICE)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{httpd.server_port}/"
    yield state
    httpd.shutdown()


@pytest.fixture
def fm(tmp_path, monkeypatch, server):
    """fashion_mnist with nothing local, downloading from the fake server, the slice as the published set."""
    from edgekit.data import fashion_mnist
    from test_data import published

    monkeypatch.setattr(fashion_mnist, "URL", server["url"])
    monkeypatch.setattr(fashion_mnist, "PUBLISHED", published(SLICE))
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EDGEKIT_DATA", raising=False)
    return fashion_mnist


def test_the_download_source_is_https_and_pinned():
    from edgekit.data import fashion_mnist

    assert fashion_mnist.URL.startswith("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/")
    assert fashion_mnist.REVISION in fashion_mnist.URL and len(fashion_mnist.REVISION) == 40


def test_a_corrupt_data_cache_file_is_fetched_again(fm, server, caplog):
    assert len(fm.load().train) == 1500
    bad = fm.cache_dir() / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(b"\0\0\x08\x01\0\0\0\x02\x01\x02"))  # readable, but not the published data
    server["hits"].clear()
    with caplog.at_level(logging.WARNING, logger="edgekit"):
        data = fm.load()
    assert len(data.train) == 1500 and server["hits"] == ["train-labels-idx1-ubyte.gz"]  # only that one
    (line,) = warnings_of(caplog)
    assert line.startswith(f"cache: discarding {bad} (its data has SHA-256 ")
    assert bad.read_bytes() == (SLICE / bad.name).read_bytes()


def test_a_truncated_data_cache_file_is_fetched_again(fm, server, caplog):
    fm.load()
    bad = fm.cache_dir() / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:5000])
    with caplog.at_level(logging.WARNING, logger="edgekit"):
        assert len(fm.load().val) == 500
    (line,) = warnings_of(caplog)
    assert line.startswith(f"cache: discarding {bad} (unreadable: ")


def test_a_download_that_does_not_match_is_refused_and_never_lands(fm, server, tmp_path):
    altered = tmp_path / "served"
    shutil.copytree(SLICE, altered)
    (altered / "train-images-idx3-ubyte.gz").write_bytes((SLICE / "train-images-idx3-ubyte.gz").read_bytes()[:-10])
    server["dir"] = altered
    with pytest.raises(EdgekitError) as err:
        fm.load()
    want = fm.PUBLISHED["train-images-idx3-ubyte.gz"].gz_sha256
    got = hashlib.sha256((altered / "train-images-idx3-ubyte.gz").read_bytes()).hexdigest()
    assert str(err.value) == (
        f"downloaded train-images-idx3-ubyte.gz from {server['url']}train-images-idx3-ubyte.gz has SHA-256 {got}, "
        f"expected {want}: it was cut short or altered on the way and was not kept; retry, or use a local copy: "
        "sudo apt-get install dataset-fashion-mnist, or put the four *-ubyte.gz files in $EDGEKIT_DATA/fashion-mnist"
    )
    assert err.value.exit_code == 2
    assert sorted(p.name for p in fm.cache_dir().iterdir()) == []  # not the bad file, no temporary file


def test_download_verified_streams_and_checks_with_an_injected_opener(tmp_path):
    import io

    class Response(io.BytesIO):
        def __init__(self, data):
            super().__init__(data)

    def opener(url, timeout):
        assert url == "https://example.invalid/f.gz" and timeout == 30
        return Response(b"payload")

    good = hashlib.sha256(b"payload").hexdigest()
    download_verified("https://example.invalid/f.gz", tmp_path / "f.gz", good, "fix it", opener=opener)
    assert (tmp_path / "f.gz").read_bytes() == b"payload"
    with pytest.raises(EdgekitError, match=r"g\.gz .* has SHA-256 .*, expected 0+: .*not kept; fix it$"):
        download_verified("https://example.invalid/f.gz", tmp_path / "g.gz", "0" * 64, "fix it", opener=opener)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.gz"]


def test_a_damaged_system_copy_is_skipped_for_the_cache(fm, tmp_path, monkeypatch, caplog):
    debian = tmp_path / "debian"
    shutil.copytree(SLICE, debian)
    (debian / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\0\0\x08\x03" + b"\0" * 12))
    monkeypatch.setattr(fm, "DEBIAN_DIR", debian)
    with caplog.at_level(logging.WARNING, logger="edgekit"):
        assert fm.locate() == fm.cache_dir()  # downloaded instead
    (line,) = warnings_of(caplog)
    assert line.startswith(f"{debian / 'train-images-idx3-ubyte.gz'} does not match the published file")
    assert "apt-get install --reinstall dataset-fashion-mnist" in line


def test_a_given_copy_is_used_and_warned_about_only_when_it_poses_as_the_full_set(tmp_path, monkeypatch, caplog):
    from edgekit.data import fashion_mnist

    given = tmp_path / "mine"
    shutil.copytree(SLICE, given)
    with caplog.at_level(logging.WARNING, logger="edgekit"):
        assert fashion_mnist.locate(given) == given  # a 1,500-image slice: the user's own data, no warning
        assert warnings_of(caplog) == []
        # 60,000 labels, all zero: the full set's size, not its content
        labels = given / "train-labels-idx1-ubyte.gz"
        labels.write_bytes(gzip.compress(b"\0\0\x08\x01" + (60_000).to_bytes(4, "big") + bytes(60_000)))
        monkeypatch.setenv("EDGEKIT_DATA", str(tmp_path / "env"))
        shutil.copytree(given, tmp_path / "env" / "fashion-mnist")
        assert fashion_mnist.locate(None, allow_download=False) == tmp_path / "env" / "fashion-mnist"
        assert fashion_mnist.locate(None, allow_download=False) == tmp_path / "env" / "fashion-mnist"
    (line,) = warnings_of(caplog)  # once, however often it is loaded
    assert "has the size of Fashion-MNIST's train-labels-idx1-ubyte.gz but not its content" in line
    assert "used as given" in line


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="Debian's dataset-fashion-mnist")
def test_debians_copy_holds_the_published_data():
    """Debian rewrites the gzip headers (no file name, another time), so its .gz files differ from the
    originals; their decompressed data must be the published data."""
    from edgekit.data import fashion_mnist

    for name, published in fashion_mnist.PUBLISHED.items():
        data = gzip.decompress((fashion_mnist.DEBIAN_DIR / name).read_bytes())
        assert hashlib.sha256(data).hexdigest() == published.idx_sha256, name
