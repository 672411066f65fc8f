"""The classifier head a Worker fine-tunes, written beside the model as head.bin.

A served model is a frozen backbone (image -> embedding) plus its trained head (the last linear
layer). The Worker's fine-tuning starts a copy of a served classifier from that head, and keeps
it from forgetting the base classes by replaying a few stored embeddings of each one next to
the new examples (workers/classifiers/head-trainer.ts). head.bin holds both, so the Worker never
needs the training images:

    float32 little-endian: weight [classes, embedding], bias [classes],
    exemplar embeddings [classes * exemplarsPerClass, embedding], class-major
"""
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from .datasets import load_mnist, normalise

# Replay exemplars per class: as many as fit the budget, up to the cap. Measured on LeNet taught
# the ten Fashion-MNIST classes (README, fine-tuning): 16 per class let 1.3 % of digits leak into
# the new classes, 200 per class 0.5 %.
MAX_EXEMPLARS_PER_CLASS = 200
EXEMPLAR_BUDGET_BYTES = 4 * 1024 * 1024
HEAD_FILE = "head.bin"
MNIST_VALIDATION = 5_000  # the last images of MNIST train, as scripts/train_lenet.py holds them out


def training_images(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images and labels of the training part of a model's data set (validation excluded)."""
    if dataset == "MNIST":
        images, labels = load_mnist("train")
        return images[:-MNIST_VALIDATION], labels[:-MNIST_VALIDATION]
    if dataset == "CIFAR-10":
        from .cifar import load_cifar10
        data = load_cifar10()
        return data["train_images"], data["train_labels"]
    raise ValueError(f"no training images known for data set {dataset!r}")


@torch.no_grad()
def write_head(model: torch.nn.Module, model_dir: Path, seed: int = 0) -> dict:
    """Write head.bin for a model folder and record it in its manifest; return the manifest."""
    manifest_path = model_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    head = getattr(model, "model", model).head  # FlipAveraged wraps the network
    from .export import served_view  # export imports this module
    model = served_view(model, manifest)  # exemplars are embedded as a default request embeds its images
    images, labels = training_images(manifest["dataset"])
    rng = np.random.default_rng(seed)
    classes = len(manifest["labels"])
    per_class = min(MAX_EXEMPLARS_PER_CLASS, EXEMPLAR_BUDGET_BYTES // (4 * classes * head.weight.shape[1]))
    picks = np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(classes)])
    spec = manifest["input"]
    model.eval()
    embedding = torch.cat([model(normalise(images[chunk], spec["mean"], spec["std"]))[0] for chunk in np.array_split(picks, -(-len(picks) // 250))])
    parts = [head.weight.detach(), head.bias.detach(), embedding]
    blob = b"".join(p.to(torch.float32).contiguous().numpy().astype("<f4").tobytes() for p in parts)
    (model_dir / HEAD_FILE).write_bytes(blob)
    manifest["head"] = {
        "file": HEAD_FILE,
        "bytes": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "classes": classes,
        "embeddingSize": int(head.weight.shape[1]),
        "exemplarsPerClass": per_class,
        "exemplars": f"{per_class} random training images per class (validation slice excluded), seed {seed}",
        "layout": "float32 little-endian: weight [classes, embeddingSize], bias [classes], "
                  "exemplar embeddings [classes * exemplarsPerClass, embeddingSize], class-major",
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
