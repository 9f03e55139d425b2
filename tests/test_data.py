import numpy as np
import pytest
import torch

from conftest import SLICE
from edgekit.data import DataConfig, fashion_mnist, load_data
from edgekit.data.transforms import normalize, random_crop_flip
from edgekit.errors import EdgekitError


def test_fashion_mnist_slice_is_real_data(fmnist_slice):
    d = fmnist_slice
    assert d.input_size == (1, 28, 28) and d.num_classes == 10
    assert len(d.train) == 1500 and len(d.val) == 500
    assert d.train.images.dtype == torch.uint8
    assert set(d.train.labels.tolist()) == set(range(10))
    # real images: mean brightness close to the published training statistics
    assert abs(d.train.images.float().div(255).mean().item() - fashion_mnist.MEAN[0]) < 0.03


def test_missing_files_name_the_fix(tmp_path, monkeypatch):
    with pytest.raises(EdgekitError, match="lacks Fashion-MNIST files"):
        fashion_mnist.load(tmp_path)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "none")
    monkeypatch.delenv("EDGEKIT_DATA", raising=False)
    with pytest.raises(EdgekitError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist.load(None, allow_download=False)


def test_env_folder_is_used(tmp_path, monkeypatch):
    import shutil

    shutil.copytree(SLICE, tmp_path / "fashion-mnist")
    monkeypatch.setenv("EDGEKIT_DATA", str(tmp_path))
    assert fashion_mnist.locate(None, allow_download=False) == tmp_path / "fashion-mnist"


def test_corrupt_idx_is_rejected(tmp_path):
    bad = tmp_path / "x.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(EdgekitError, match="not a readable IDX file"):
        fashion_mnist.read_idx(bad)


def _write_images(folder, n, color):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (20, 16), color=(color, 255 - color, i * 10)).save(folder / f"{i}.png")


def test_image_folder_seeded_split(tmp_path):
    _write_images(tmp_path / "cats", 10, 10)
    _write_images(tmp_path / "dogs", 10, 200)
    (tmp_path / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    d = load_data(DataConfig(name=str(tmp_path), image_size=32))
    assert d.classes == ["cats", "dogs"] and d.input_size == (3, 32, 32)
    assert len(d.train) + len(d.val) == 20  # the broken file was skipped
    assert "1 unreadable skipped" in d.source
    again = load_data(DataConfig(name=str(tmp_path), image_size=32))
    assert torch.equal(d.val.images, again.val.images)


def test_image_folder_train_val(tmp_path):
    for split in ("train", "val"):
        _write_images(tmp_path / split / "a", 3, 0)
        _write_images(tmp_path / split / "b", 3, 250)
    d = load_data(DataConfig(name=str(tmp_path), image_size=16))
    assert len(d.train) == 6 and len(d.val) == 6


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "has no class sub-folders"),
        (lambda p: (p / "cls").mkdir(parents=True), "has no images"),
        (lambda p: (_write_images(p / "train" / "a", 2, 0), _write_images(p / "val" / "b", 2, 0)), "classes differ"),
    ],
)
def test_image_folder_errors(tmp_path, setup, message):
    root = tmp_path / "data"
    setup(root)
    with pytest.raises(EdgekitError, match=message):
        load_data(DataConfig(name=str(root)))


def test_augmentation_is_seeded_and_shape_preserving(fmnist_slice):
    x = fmnist_slice.train.images[:64]
    a = random_crop_flip(x, 2, True, torch.Generator().manual_seed(1))
    b = random_crop_flip(x, 2, True, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and a.dtype == torch.uint8 and torch.equal(a, b)
    assert not torch.equal(a, x)
    same = random_crop_flip(x, 0, False, torch.Generator())
    assert torch.equal(same, x)


def test_normalize_uses_stats(fmnist_slice):
    x = normalize(fmnist_slice.train.images, fmnist_slice.mean, fmnist_slice.std)
    assert abs(x.mean().item()) < 0.1 and abs(x.std().item() - 1) < 0.1
    assert np.isfinite(x.numpy()).all()


def published(folder) -> dict:
    """fashion_mnist.PUBLISHED for the files in `folder`, so a fake server can serve them as the real set."""
    import gzip
    import hashlib

    return {
        name: fashion_mnist.Published(
            fashion_mnist.PUBLISHED[name].items,
            hashlib.sha256((folder / name).read_bytes()).hexdigest(),
            hashlib.sha256(gzip.decompress((folder / name).read_bytes())).hexdigest(),
        )
        for name in fashion_mnist.FILES.values()
    }


def test_download_when_nothing_is_local(tmp_path, monkeypatch):
    """The download path, against a local HTTP server serving the shipped slice."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SLICE))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(fashion_mnist, "URL", f"http://127.0.0.1:{server.server_port}/")
        monkeypatch.setattr(fashion_mnist, "PUBLISHED", published(SLICE))  # the slice stands in for the set
        monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "none")
        monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))
        monkeypatch.delenv("EDGEKIT_DATA", raising=False)
        data = fashion_mnist.load()
    finally:
        server.shutdown()
    assert len(data.train) == 1500 and data.source == str(tmp_path / "cache" / "fashion-mnist")


def test_folder_of_idx_files_is_fashion_mnist():
    assert load_data(DataConfig(name=str(SLICE))).name == "fashion_mnist"


def test_image_folder_is_read_at_its_own_size_never_upscaled(tmp_path):
    """20 x 16 images: read at 16 px (their short side), not the old fixed 64; capped by the model's size."""
    _write_images(tmp_path / "a", 4, 0)
    _write_images(tmp_path / "b", 4, 250)
    assert load_data(DataConfig(name=str(tmp_path))).input_size == (3, 16, 16)
    assert load_data(DataConfig(name=str(tmp_path)), max_size=12).input_size == (3, 12, 12)


def test_a_built_in_set_at_another_size_and_as_rgb(fmnist_slice):
    """What a pretrained RGB model needs from Fashion-MNIST, asked for explicitly (data.image_size, data.channels)."""
    from conftest import SLICE

    d = load_data(DataConfig(root=str(SLICE), image_size=56, channels=3))
    assert d.input_size == (3, 56, 56) and d.train.images.dtype == torch.uint8
    assert d.mean == fmnist_slice.mean * 3 and len(d.val) == len(fmnist_slice.val)
    assert torch.equal(d.train.images[:, 0], d.train.images[:, 2])  # grayscale repeated
    # 2x bilinear upscaling keeps the mean brightness of each image (within rounding)
    assert (
        d.train.images[:8].float().mean((1, 2, 3)) - fmnist_slice.train.images[:8].float().mean((1, 2, 3))
    ).abs().max() < 2
    with pytest.raises(EdgekitError, match="only grayscale"):
        from edgekit.data.reshape import with_channels

        with_channels(d, 4)
