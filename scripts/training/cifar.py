"""CIFAR-10's training split from ../shared/data/cifar10/train.tar.gz (one JPEG per image),
decoded once into an ignored cache, and split into a training part and a held-out validation
slice (the last 500 images of each class). The test split is the maintainers' acceptance set
and is not read here."""
import io
import tarfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .datasets import REPO

ARCHIVE = REPO.parent / "shared" / "data" / "cifar10" / "train.tar.gz"
CACHE = REPO / ".cache" / "cifar10-train.npz"
LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
VALIDATION_PER_CLASS = 500


def _decode_archive(archive: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    images, labels, names = [], [], []
    with tarfile.open(archive, "r:gz") as tar:
        members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.endswith(".jpg")), key=lambda m: m.name)
        for member in members:
            label = member.name.split("/")[-2]
            image = Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB")
            images.append(np.asarray(image, dtype=np.uint8))
            labels.append(LABELS.index(label))
            names.append(member.name)
    return np.stack(images), np.array(labels, dtype=np.int64), np.array(names)


def load_cifar10(archive: Path = ARCHIVE, cache: Path = CACHE) -> dict[str, np.ndarray]:
    """uint8 images [N, 32, 32, 3], int64 labels and archive names of the train and val parts,
    ordered by class then file name. Decodes the archive on first use (about a minute)."""
    if not cache.exists():
        if not archive.exists():
            raise FileNotFoundError(f"{archive} not found: CIFAR-10 is read from ../shared/data beside the repository")
        print(f"decoding {archive} into {cache} (once)", flush=True)
        images, labels, names = _decode_archive(archive)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, images=images, labels=labels, names=names)
    data = np.load(cache)
    images, labels, names = data["images"], data["labels"], data["names"]
    val = np.zeros(len(labels), dtype=bool)
    for c in range(len(LABELS)):
        val[np.flatnonzero(labels == c)[-VALIDATION_PER_CLASS:]] = True
    return {
        "train_images": images[~val], "train_labels": labels[~val],
        "val_images": images[val], "val_labels": labels[val], "val_names": names[val],
    }


def to_tensor(images: np.ndarray, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> normalised float32 [N, 3, H, W], as the Worker preprocesses."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def validation_tensors(mean: list[float], std: list[float], every: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The validation slice (every `every`-th image of it), normalised."""
    data = load_cifar10()
    return to_tensor(data["val_images"][::every], mean, std), torch.from_numpy(data["val_labels"][::every])


def calibration_tensors(mean: list[float], std: list[float], count: int, seed: int = 0) -> torch.Tensor:
    """`count` random images of the training part (never the validation slice), normalised:
    what a statically quantised model's activation ranges are measured on."""
    images = load_cifar10()["train_images"]
    picks = np.random.default_rng(seed).choice(len(images), count, replace=False)
    return to_tensor(images[np.sort(picks)], mean, std)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    """Top-1 accuracy of a model returning (embedding, logits)."""
    model.eval()
    correct = 0
    for xb, yb in zip(x.split(batch), y.split(batch)):
        correct += (model(xb)[1].argmax(1) == yb).sum().item()
    return correct / len(y)


def mirror_accuracies(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Validation accuracy with the mirror image's outputs averaged in (what a request gets by
    default, flip_average=true) and of the single pass (flip_average=false). A graph that averages
    inside itself (the first exports) has only the first."""
    from .architectures import FlipAveraged
    if isinstance(model, FlipAveraged):
        return {"flipAveraged": evaluate(model, x, y)}
    return {"flipAveraged": evaluate(FlipAveraged(model), x, y), "singlePass": evaluate(model, x, y)}


def translate_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Validation accuracy with airbench94's six views averaged (translate_average=true)."""
    from .architectures import TranslateAveraged
    return evaluate(TranslateAveraged(model), x, y)
