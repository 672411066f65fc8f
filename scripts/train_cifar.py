#!/usr/bin/python3
"""Train a CIFAR-10 model and export it to models/<arch>/<version>/ (ONNX + manifest + state_dict).

    /usr/bin/python3 scripts/train_cifar.py --arch resnet-edge     # the default edge model
    /usr/bin/python3 scripts/train_cifar.py --arch vggish
    /usr/bin/python3 scripts/train_cifar.py --arch resnet50
    /usr/bin/python3 scripts/train_cifar.py --arch resnet-edge --smoke --out /tmp/edge-smoke   # seconds, for CI

Measured, one run each, on 2 CPU cores (torch 1.13, OpenBLAS) with shortened schedules, no GPU
yet (validation slice: the last 500 training images of each class, flip-averaged):
    resnet-edge  --epochs 12                          88.92 %   2,606 s
    vggish       --epochs 4                           79.90 %   1,277 s
    resnet50     --epochs 1 --train-images 10000      20.04 %     898 s
The full recipes below target 92 / 90 / 94 % and need a GPU. The maintainers measure the
CIFAR-10 test split; it is not read here.

One recipe for every architecture, after the public CIFAR-10 speed-runs: random translation and
horizontal flips, label smoothing 0.2, SGD with Nesterov momentum, a linear warm-up then linear
decay of the learning rate to zero, batch norm everywhere (VGGish included), and a flip-averaged
prediction that the exported graph keeps. Runs on a CUDA GPU (bf16 autocast, channels-last)
when there is one and on the CPU otherwise; torch 1.13 and 2.x.
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
from training.architectures import FlipAveraged, build, parameter_count  # noqa: E402
from training.cifar import LABELS, evaluate, load_cifar10, to_tensor  # noqa: E402
from training.datasets import REPO  # noqa: E402
from training.export import write_model_folder  # noqa: E402

# ---- hyperparameters -------------------------------------------------------------------------
RECIPES = {
    #               epochs batch  peak lr  weight decay  translate  cutout
    "resnet-edge": dict(epochs=16, batch=512, lr=0.2, wd=5e-4, translate=2, cutout=0),
    "vggish":      dict(epochs=40, batch=256, lr=0.1, wd=5e-4, translate=4, cutout=8),
    "resnet50":    dict(epochs=40, batch=256, lr=0.1, wd=5e-4, translate=4, cutout=8),
}
MOMENTUM = 0.9            # Nesterov
LABEL_SMOOTHING = 0.2
WARMUP_FRACTION = 0.2     # of all steps; then linear decay to zero
SEED = 0
# ----------------------------------------------------------------------------------------------

NAMES = {
    "resnet-edge": "ResNet-edge (CIFAR-10, default)",
    "vggish": "VGGish with batch norm (CIFAR-10)",
    "resnet50": "ResNet-50, bottleneck, 32x32 stem (CIFAR-10)",
}
SUMMARIES = {
    "resnet-edge": "whiten 2x2 (frozen) -> [conv3x3 64, pool, +res conv] -> [conv 256, pool, +res] -> [conv 256, pool, +res] -> global max-pool -> FC 10",
    "vggish": "conv3x3 64x2 -> pool -> 128x2 -> pool -> 256x3 -> pool (BN after each conv) -> FC 4096 -> FC 4096 (dropout 0.5) -> FC 10",
    "resnet50": "conv3x3 64 -> bottleneck stages 3/4/6/3 (64-512, x4 expansion) -> global avg-pool -> FC 10",
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=sorted(RECIPES), default="resnet-edge")
    p.add_argument("--out", type=Path, help="default: models/<arch>/1")
    p.add_argument("--epochs", type=int, help="override the recipe's epoch count")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--train-images", type=int, help="train on a random subset of this many images (short CPU runs)")
    p.add_argument("--smoke", action="store_true", help="1 epoch on 256 images: checks the pipeline in seconds")
    return p.parse_args()


def augment(x: torch.Tensor, translate: int, cutout: int, gen: torch.Generator) -> torch.Tensor:
    """Random translation (reflect-padded crop), horizontal flip and cutout, per image."""
    n, _, h, w = x.shape
    device = x.device
    if translate:
        padded = F.pad(x, [translate] * 4, mode="reflect")
        dy = torch.randint(0, 2 * translate + 1, (n,), generator=gen).to(device)
        dx = torch.randint(0, 2 * translate + 1, (n,), generator=gen).to(device)
        rows = (dy[:, None] + torch.arange(h, device=device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=device))[:, None, None, :]
        x = padded[torch.arange(n, device=device)[:, None, None, None], torch.arange(x.shape[1], device=device)[None, :, None, None], rows, cols]
    flip = (torch.rand(n, generator=gen) < 0.5).to(device)
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if cutout:
        cy = torch.randint(0, h, (n,), generator=gen).to(device)
        cx = torch.randint(0, w, (n,), generator=gen).to(device)
        ys, xs = torch.arange(h, device=device), torch.arange(w, device=device)
        inside = ((ys[None, :, None] - cy[:, None, None]).abs() <= cutout // 2) & ((xs[None, None, :] - cx[:, None, None]).abs() <= cutout // 2)
        x = x.masked_fill(inside[:, None], 0.0)
    return x


def main():
    args = parse_args()
    recipe = dict(RECIPES[args.arch])
    if args.epochs:
        recipe["epochs"] = args.epochs
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(args.seed)
    out = args.out or REPO / "models" / args.arch / "1"

    data = load_cifar10()
    train_images, train_labels = data["train_images"], data["train_labels"]
    val_images, val_labels = data["val_images"], data["val_labels"]
    subset = 256 if args.smoke else args.train_images
    if subset:
        pick = np.random.default_rng(args.seed).permutation(len(train_labels))[:subset]
        train_images, train_labels = train_images[pick], train_labels[pick]
    if args.smoke:
        val_images, val_labels = val_images[::20], val_labels[::20]
        recipe.update(epochs=1, batch=64)
    mean = (train_images.reshape(-1, 3).mean(0) / 255).round(4).tolist()
    std = (train_images.reshape(-1, 3).std(0) / 255).round(4).tolist()

    x_train, y_train = to_tensor(train_images, mean, std).to(device), torch.from_numpy(train_labels).to(device)
    x_val, y_val = to_tensor(val_images, mean, std).to(device), torch.from_numpy(val_labels).to(device)

    options = {"batch_norm": True} if args.arch == "vggish" else {}
    net = build(args.arch, channels=3, classes=len(LABELS), **options)
    if hasattr(net, "init_whitening"):
        net.init_whitening(x_train[:5000].cpu())
    model = FlipAveraged(net).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    steps_per_epoch = math.ceil(len(y_train) / recipe["batch"])
    total_steps = recipe["epochs"] * steps_per_epoch
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=recipe["lr"], momentum=MOMENTUM, nesterov=True, weight_decay=recipe["wd"])
    warmup = max(1, int(WARMUP_FRACTION * total_steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: (step + 1) / warmup if step < warmup else max(0.0, (total_steps - step) / (total_steps - warmup)))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    hardware = torch.cuda.get_device_name() if device.type == "cuda" else f"{platform.machine()} CPU, {args.threads} threads"

    print(f"{args.arch}: {parameter_count(net):,} parameters; {len(y_train):,} train / {len(y_val):,} val images; "
          f"{recipe['epochs']} epochs of batch {recipe['batch']} on {hardware} (torch {torch.__version__})", flush=True)
    started = time.perf_counter()
    for epoch in range(1, recipe["epochs"] + 1):
        model.train()
        epoch_start = time.perf_counter()
        order = torch.randperm(len(y_train), generator=gen).to(device)
        loss_sum, correct = 0.0, 0
        for step, batch in enumerate(order.split(recipe["batch"]), 1):
            xb = augment(x_train[batch], recipe["translate"], recipe["cutout"], gen)
            if device.type == "cuda":
                xb = xb.contiguous(memory_format=torch.channels_last)
            with autocast:
                logits = net(xb)[1]
                loss = F.cross_entropy(logits, y_train[batch], label_smoothing=LABEL_SMOOTHING)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += loss.item() * len(batch)
            correct += (logits.argmax(1) == y_train[batch]).sum().item()
            if device.type == "cpu" and not args.smoke and step % max(1, steps_per_epoch // 5) == 0 and step < steps_per_epoch:
                print(f"  epoch {epoch} step {step}/{steps_per_epoch}  loss {loss_sum / (step * recipe['batch']):.4f}  "
                      f"{time.perf_counter() - epoch_start:5.0f}s", flush=True)
        val_acc = evaluate(model, x_val, y_val)
        print(f"epoch {epoch:2d}/{recipe['epochs']}  loss {loss_sum / len(y_train):.4f}  train {100 * correct / len(y_train):6.2f}%  "
              f"val {100 * val_acc:6.2f}%  {time.perf_counter() - epoch_start:5.1f}s", flush=True)
    train_seconds = time.perf_counter() - started
    model = model.float().to("cpu", memory_format=torch.contiguous_format)
    val_acc = evaluate(model, x_val.cpu(), y_val.cpu())

    manifest = {
        "id": args.arch,
        "version": 1,
        "name": NAMES[args.arch],
        "architecture": {"name": args.arch, "summary": SUMMARIES[args.arch], "flipAverage": True, "options": options},
        "dataset": "CIFAR-10",
        "task": "image-classification",
        "labels": LABELS,
        "input": {
            "layout": "NCHW", "channels": 3, "colorSpace": "rgb", "height": 32, "width": 32,
            "scale": 1 / 255, "mean": mean, "std": std, "resize": "center-crop",
        },
        "embeddingSize": net.embedding_size,
        "metrics": {
            "validationAccuracy": round(val_acc, 5),
            "validationSet": f"{len(y_val):,} held-out CIFAR-10 training images (last 500 of each class), flip-averaged",
        },
        "training": {
            "script": "scripts/train_cifar.py",
            "smoke": args.smoke,
            "device": device.type,
            "recipeComplete": recipe["epochs"] == RECIPES[args.arch]["epochs"] and not subset,
            "epochs": recipe["epochs"],
            "batchSize": recipe["batch"],
            "optimizer": f"SGD Nesterov {MOMENTUM}, weight decay {recipe['wd']}, peak LR {recipe['lr']}, "
                         f"linear warm-up {WARMUP_FRACTION:.0%} then linear decay",
            "augmentation": f"translate <= {recipe['translate']} px (reflect), horizontal flip"
                            + (f", cutout {recipe['cutout']} px" if recipe["cutout"] else ""),
            "labelSmoothing": LABEL_SMOOTHING,
            "trainImages": len(y_train),
            "seed": args.seed,
            "wallSeconds": round(train_seconds, 1),
            "hardware": hardware,
            "torch": torch.__version__,
        },
    }
    full = write_model_folder(model, out, manifest)
    print(json.dumps({"out": str(out), "sha256": full["artifact"]["sha256"], "bytes": full["artifact"]["bytes"]}))
    print(f"final: validation accuracy {100 * val_acc:.2f}% on {len(y_val):,} images, training {train_seconds:.1f}s on {hardware}",
          flush=True)


if __name__ == "__main__":
    main()
