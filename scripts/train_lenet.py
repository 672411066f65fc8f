#!/usr/bin/python3
"""Train LeNet on MNIST and export it to models/lenet/<version>/ (ONNX + manifest + state_dict).

Measured: 99.62 % on the 10,000 MNIST test images (validation 99.58 %), 112 s of training
(15 epochs, 7.5 s each) on 2 CPU cores (x86_64, torch 1.13 + OpenBLAS), 1 run, seed 0.

    /usr/bin/python3 scripts/train_lenet.py            # full run, writes models/lenet/1
    /usr/bin/python3 scripts/train_lenet.py --smoke --out /tmp/lenet-smoke   # seconds, for CI

Deterministic for a given --seed and --threads. The last 5,000 training images are held out for
validation; the 10,000 test images are scored once, after training, and never steer it.
"""
import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training.architectures import LeNet, parameter_count  # noqa: E402
from training.datasets import MNIST_LABELS, MNIST_MEAN, MNIST_STD, REPO, load_mnist, normalise  # noqa: E402
from training.export import write_model_folder  # noqa: E402

# ---- hyperparameters -------------------------------------------------------------------------
EPOCHS = 15
BATCH_SIZE = 128
PEAK_LR = 3e-3            # Adam, one-cycle: warm up for 20 % of steps, cosine down to ~0
WEIGHT_DECAY = 5e-4       # decoupled (AdamW)
VALIDATION_SIZE = 5_000
MAX_ROTATION_DEG = 10.0   # augmentation: small random affine warps of each training digit
MAX_SCALE = 0.10
MAX_SHIFT_PX = 2.0
SEED = 0
# ----------------------------------------------------------------------------------------------


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "models" / "lenet" / "1")
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--smoke", action="store_true", help="1 epoch on 2,000 images: checks the pipeline in seconds")
    return p.parse_args()


def random_affine(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Rotate, scale and shift each image of the batch by its own small random amount."""
    n, _, h, _ = x.shape
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(MAX_ROTATION_DEG)
    scale = 1 + (torch.rand(n, generator=gen) * 2 - 1) * MAX_SCALE
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2 * MAX_SHIFT_PX / h)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    background = x.amin(dim=(1, 2, 3), keepdim=True)
    return F.grid_sample(x - background, grid, align_corners=False) + background


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = sum((model(xb)[1].argmax(1) == yb).sum().item() for xb, yb in zip(x.split(1000), y.split(1000)))
    return correct / len(y)


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(args.seed)

    images, labels = load_mnist("train")
    test_images, test_labels = load_mnist("t10k")
    epochs = args.epochs
    if args.smoke:
        images, labels = images[:2_000 + 500], labels[:2_000 + 500]
        test_images, test_labels = test_images[:500], test_labels[:500]
        epochs = 1
    validation = 500 if args.smoke else VALIDATION_SIZE
    x = normalise(images, [MNIST_MEAN], [MNIST_STD])
    y = torch.from_numpy(labels)
    x_train, y_train, x_val, y_val = x[:-validation], y[:-validation], x[-validation:], y[-validation:]
    x_test, y_test = normalise(test_images, [MNIST_MEAN], [MNIST_STD]), torch.from_numpy(test_labels)

    model = LeNet(channels=1, classes=len(MNIST_LABELS))
    steps_per_epoch = math.ceil(len(y_train) / BATCH_SIZE)
    optimizer = torch.optim.AdamW(model.parameters(), lr=PEAK_LR, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=PEAK_LR, total_steps=epochs * steps_per_epoch, pct_start=0.2)

    print(f"LeNet: {parameter_count(model):,} parameters; {len(y_train):,} train / {len(y_val):,} val / "
          f"{len(y_test):,} test images; {epochs} epochs on {args.threads} threads (torch {torch.__version__})",
          flush=True)
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        epoch_start = time.perf_counter()
        order = torch.randperm(len(y_train), generator=gen)
        loss_sum, correct = 0.0, 0
        for batch in order.split(BATCH_SIZE):
            xb, yb = random_affine(x_train[batch], gen), y_train[batch]
            logits = model(xb)[1]
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += loss.item() * len(batch)
            correct += (logits.argmax(1) == yb).sum().item()
        val_acc = accuracy(model, x_val, y_val)
        print(f"epoch {epoch:2d}/{epochs}  loss {loss_sum / len(y_train):.4f}  train {100 * correct / len(y_train):6.2f}%  "
              f"val {100 * val_acc:6.2f}%  {time.perf_counter() - epoch_start:5.1f}s", flush=True)
    train_seconds = time.perf_counter() - started
    test_acc = accuracy(model, x_test, y_test)

    manifest = {
        "id": "lenet",
        "version": 1,
        "name": "LeNet (MNIST digits)",
        "architecture": {
            "name": "lenet",
            "summary": "CONV 20@5x5 -> ReLU -> POOL 2x2 -> CONV 50@5x5 -> ReLU -> POOL 2x2 -> FC 500 -> ReLU -> FC 10",
        },
        "dataset": "MNIST",
        "task": "image-classification",
        "labels": MNIST_LABELS,
        "input": {
            "layout": "NCHW",
            "channels": 1,
            "colorSpace": "grayscale",
            "height": 28,
            "width": 28,
            "scale": 1 / 255,
            "mean": [MNIST_MEAN],
            "std": [MNIST_STD],
            "polarity": "light digit on dark background, as in MNIST",
            "resize": "stretch",
        },
        "embeddingSize": LeNet.embedding_size,
        "metrics": {
            "testAccuracy": round(test_acc, 5),
            "testSet": f"MNIST t10k, {len(y_test):,} images",
            "validationAccuracy": round(accuracy(model, x_val, y_val), 5),
            "validationSet": f"last {len(y_val):,} images of MNIST train",
        },
        "training": {
            "script": "scripts/train_lenet.py",
            "smoke": args.smoke,
            "epochs": epochs,
            "batchSize": BATCH_SIZE,
            "optimizer": f"AdamW (weight decay {WEIGHT_DECAY}), one-cycle LR peaking at {PEAK_LR}",
            "augmentation": f"random affine: rotate <= {MAX_ROTATION_DEG} deg, scale +-{MAX_SCALE:.0%}, shift <= {MAX_SHIFT_PX} px",
            "trainImages": len(y_train),
            "seed": args.seed,
            "threads": args.threads,
            "wallSeconds": round(train_seconds, 1),
            "hardware": f"{platform.machine()} CPU, {args.threads} threads",
            "torch": torch.__version__,
        },
    }
    full = write_model_folder(model, args.out, manifest)
    print(json.dumps({"out": str(args.out), "sha256": full["artifact"]["sha256"], "bytes": full["artifact"]["bytes"]}))
    print(f"final: test accuracy {100 * test_acc:.2f}% on {len(y_test):,} images, "
          f"validation {100 * full['metrics']['validationAccuracy']:.2f}%, training {train_seconds:.1f}s", flush=True)


if __name__ == "__main__":
    main()
