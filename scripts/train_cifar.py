#!/usr/bin/python3
"""Train a CIFAR-10 model and export it to models/<arch>/<version>/ (ONNX + manifest + state_dict).

    /usr/bin/python3 scripts/train_cifar.py --arch resnet-edge     # the default edge model
    /usr/bin/python3 scripts/train_cifar.py --arch vggish
    /usr/bin/python3 scripts/train_cifar.py --arch resnet50
    /usr/bin/python3 scripts/train_cifar.py --arch resnet-edge --smoke --out /tmp/edge-smoke   # seconds, for CI

Measured on the validation slice (the last 500 training images of each class; the maintainers
measure the CIFAR-10 test split, which is not read here):
    resnet-edge v3  this recipe: airbench94's plain net (identity-initialised convs, no shortcut)
                    and hyperparameters, 20 epochs, bf16 (timed 2.9 s/step vs fp32 5.5 s), Intel
                    Xeon with AMX and avx512_bf16, 2 threads: 90.94 % flip-averaged, 90.18 % one
                    pass; 2,621 s of training (about 2 min an epoch). Whitened from the first 5,000
                    training images (which are class-ordered: airplanes and cars); runs since use
                    a random 5,000 (their patch covariances differ little: eigenvalues within 35 %).
    resnet-edge v2  the same recipe with a shortcut around each group's second conv, 18 epochs,
                    AMD EPYC (Zen 5): 90.56 % flip-averaged, 89.46 % one pass; 3,370 s.
                    The 94 % target is missed by both: training accuracy reaches 99 % while
                    validation levels off near 91 %, with airbench94's recipe at twice its epochs
                    (94.0 % in 9.9 epochs on the original CIFAR-10, with translation test-time
                    augmentation too). Suspected, not measured: these training images are JPEGs at
                    quality 75 with 4:2:0 chroma subsampling (colour at 16x16), and 45,000 of the
                    50,000 are trained on.
    vggish v3       this recipe, 32 epochs, bf16, the same Xeon: 90.06 % flip-averaged, 89.60 % one
                    pass, 4,494 s; training accuracy 98.9 % at the end. v2 (24 epochs, cutout 8):
                    89.52 % / 88.84 %, 3,408 s, training accuracy 93 %. The 91 % target is missed.
    resnet50 v2     this recipe: the first stage at stride 2 (16x16 maps, 0.66 GFLOP an image
                    instead of 2.60), 10 epochs, bf16 (timed 2.26 s/step vs fp32 6.32), AMD EPYC
                    with avx512_bf16, 2 threads: 83.24 % flip-averaged, 82.80 % one pass; 6,853 s
                    (8.5-8.7 min an epoch when the machine was otherwise idle, the rest slowed by
                    tests sharing the cores). Below the 85 % floor, not served; the 93 % target is
                    missed. It underfits: training accuracy (81.3 %, augmented) is still below
                    validation at the end and both were rising, so it wants more epochs than two
                    hours of this CPU give, not a different regulariser.
    v1 runs of the previous recipe (SGD 0.9, warm-up then linear decay): resnet-edge 12 epochs
    88.92 % (2,606 s), vggish 4 epochs 79.90 %, resnet50 1 epoch on 10,000 images 20.04 %; the
    last two are below the 85 % floor and not served.

Recipes (RECIPES below), after the public CIFAR-10 speed-runs: random translation and horizontal
flips, label smoothing 0.2, SGD with Nesterov momentum, batch norm everywhere (VGGish included).
The exported graph is one pass; averaging in the mirror image is a serving option
(workers/classify/flip-average.ts), and the manifest records the accuracy both ways. Runs on a
CUDA GPU (bf16 autocast, channels-last) when there is one and on the CPU otherwise, with bf16
where it measures faster (--precision); checkpoints every epoch and resumes with --resume.
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
from training.cifar import LABELS, evaluate, load_cifar10, mirror_accuracies, to_tensor  # noqa: E402
from training.datasets import REPO  # noqa: E402
from training.curves import write_curves_svg  # noqa: E402
from training.export import write_model_folder  # noqa: E402

# ---- hyperparameters -------------------------------------------------------------------------
# Learning rates are PyTorch's for the batch-mean loss. The edge ResNet follows airbench94's
# recipe (Keller Jordan's CIFAR-10 speed-runs): Nesterov momentum 0.85, batch-norm biases at 64x
# the learning rate with the same decay per step, batch-norm scales frozen at 1, logits scaled by
# 1/9 while training (folded into the head for export), a triangular schedule, a lookahead EMA of
# the weights, and horizontal flips that alternate by epoch.
RECIPES = {
    # bias_lr: the norm biases' learning rate as a multiple of lr; schedule: the learning rate's
    # multiplier at the start, the fraction of steps where it peaks at 1, and at the end (linear between).
    "resnet-edge": dict(epochs=20, batch=1024, lr=1.5, momentum=0.85, wd=1.33e-3, bias_lr=64.0, schedule=(0.2, 0.23, 0.07), translate=2, cutout=0, lookahead=True, logit_scale=1 / 9, frozen_bn_scale=True, bn_momentum=0.4, options=dict(residual=False)),
    "vggish":      dict(epochs=32, batch=512, lr=0.2, momentum=0.9, wd=5e-4, bias_lr=1.0, schedule=(0.1, 0.25, 0.0), translate=4, cutout=0, lookahead=False, logit_scale=1.0, frozen_bn_scale=False, bn_momentum=0.1, options=dict(batch_norm=True)),
    "resnet50":    dict(epochs=10, batch=256, lr=0.2, momentum=0.9, wd=5e-4, bias_lr=1.0, schedule=(0.1, 0.2, 0.0), translate=4, cutout=0, lookahead=False, logit_scale=1.0, frozen_bn_scale=False, bn_momentum=0.1, options=dict(first_stride=2)),
}
LABEL_SMOOTHING = 0.2
LOOKAHEAD = dict(start_epoch=3, every=5, decay=0.95, power=3.0)  # EMA decay 0.95^5 ramped by (step/total)^3
WHITEN_BIAS_EPOCHS = 3     # the whitening conv's bias trains this long, then freezes with its weights
SEED = 0
# ----------------------------------------------------------------------------------------------

NAMES = {
    "resnet-edge": "ResNet-edge (CIFAR-10, default)",
    "vggish": "VGGish with batch norm (CIFAR-10)",
    "resnet50": "ResNet-50, bottleneck, 16x16 first stage (CIFAR-10)",
}
SUMMARIES = {
    "resnet-edge": "whiten 2x2 (frozen) -> [conv3x3 64, pool, conv 64] -> [conv 256, pool, conv 256] -> [conv 256, pool, conv 256] (identity-initialised, BN + GELU after each) -> global max-pool -> FC 10",
    "vggish": "conv3x3 64x2 -> pool -> 128x2 -> pool -> 256x3 -> pool (BN after each conv) -> FC 4096 -> FC 4096 (dropout 0.5) -> FC 10",
    "resnet50": "conv3x3 64 -> bottleneck stages 3/4/6/3 (64-512, x4 expansion; the first at stride 2: 16x16 maps) -> global avg-pool -> FC 10",
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=sorted(RECIPES), default="resnet-edge")
    p.add_argument("--out", type=Path, help="default: models/<arch>/<the next version>")
    p.add_argument("--epochs", type=int, help="override the recipe's epoch count")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="auto: on a CPU, time a few steps of each and train with the faster")
    p.add_argument("--checkpoints", type=Path, help="where each epoch's checkpoint goes; default: .cache/train/<arch>")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint of the same settings")
    p.add_argument("--train-images", type=int, help="train on a random subset of this many images (short CPU runs)")
    p.add_argument("--smoke", action="store_true", help="1 epoch on 256 images: checks the pipeline in seconds")
    return p.parse_args()


def augment(x: torch.Tensor, flip: torch.Tensor, translate: int, cutout: int, gen: torch.Generator) -> torch.Tensor:
    """Random translation (reflect-padded crop) and cutout per image; `flip` says which to mirror."""
    n, _, h, w = x.shape
    device = x.device
    if translate:
        padded = F.pad(x, [translate] * 4, mode="reflect")
        dy = torch.randint(0, 2 * translate + 1, (n,), generator=gen).to(device)
        dx = torch.randint(0, 2 * translate + 1, (n,), generator=gen).to(device)
        rows = (dy[:, None] + torch.arange(h, device=device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=device))[:, None, None, :]
        x = padded[torch.arange(n, device=device)[:, None, None, None], torch.arange(x.shape[1], device=device)[None, :, None, None], rows, cols]
    x = torch.where(flip.to(device)[:, None, None, None], x.flip(3), x)
    if cutout:
        cy = torch.randint(0, h, (n,), generator=gen).to(device)
        cx = torch.randint(0, w, (n,), generator=gen).to(device)
        ys, xs = torch.arange(h, device=device), torch.arange(w, device=device)
        inside = ((ys[None, :, None] - cy[:, None, None]).abs() <= cutout // 2) & ((xs[None, None, :] - cx[:, None, None]).abs() <= cutout // 2)
        x = x.masked_fill(inside[:, None], 0.0)
    return x


def lr_multiplier(step: int, total: int, schedule: tuple[float, float, float]) -> float:
    """The triangular schedule: `start` at step 0, 1 at `peak` of the steps, `end` at the last."""
    start, peak, end = schedule
    top = max(1, int(peak * total))
    return start + (1 - start) * step / top if step < top else 1 + (end - 1) * (step - top) / max(1, total - top)


def next_version_dir(model_dir: Path) -> Path:
    """models/<arch>/<N+1>, N the newest version there (Triton's layout: a new run is a new version)."""
    versions = [int(p.name) for p in model_dir.glob("*") if p.name.isdigit()] if model_dir.exists() else []
    return model_dir / str(max(versions, default=0) + 1)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_has_bf16() -> bool:
    try:
        return "avx512_bf16" in Path("/proc/cpuinfo").read_text() or "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def autocast_for(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def choose_precision(requested: str, device: torch.device, step, batch) -> tuple[str, dict]:
    """bf16 autocast where it is faster. On a CUDA GPU always; on a CPU time 3 steps of each (on
    a copy of the model) when the CPU has native bf16 (without avx512_bf16 it is emulated and
    slower than fp32)."""
    if requested != "auto":
        return requested, {"chosen": requested, "by": "flag"}
    if device.type == "cuda":
        return "bf16", {"chosen": "bf16", "by": "CUDA GPU"}
    if not cpu_has_bf16():
        return "fp32", {"chosen": "fp32", "by": "CPU without avx512_bf16"}
    seconds = {}
    for precision in ("fp32", "bf16"):
        step(precision, batch)  # warm-up
        started = time.perf_counter()
        for _ in range(3):
            step(precision, batch)
        seconds[precision] = round((time.perf_counter() - started) / 3, 3)
    chosen = min(seconds, key=seconds.get)
    return chosen, {"chosen": chosen, "by": "timed", "secondsPerStep": seconds}


class Lookahead:
    """An EMA of every float tensor of the model, copied back into it after each update (airbench's
    lookahead): the weights move fast early and are averaged strongly at the end."""

    def __init__(self, model: torch.nn.Module):
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, decay: float) -> None:
        state = model.state_dict()
        for k, ema in self.ema.items():
            ema.lerp_(state[k], 1 - decay)
            state[k].copy_(ema)


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
    out = args.out or next_version_dir(REPO / "models" / args.arch)

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

    options = recipe["options"]  # architecture options, recorded in the manifest to rebuild the net
    net = build(args.arch, channels=3, classes=len(LABELS), **options)
    whiten = net.features[0] if hasattr(net, "init_whitening") else None
    if whiten is not None:
        # A random 5,000 (the training part is ordered by class: its first 5,000 are airplanes and cars).
        sample = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(args.seed))[:5000]
        net.init_whitening(x_train[sample.to(x_train.device)].cpu())
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = recipe["bn_momentum"]
            module.weight.requires_grad_(not recipe["frozen_bn_scale"])
    model = FlipAveraged(net).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)

    # Batch-norm biases (and scales, where they train) get bias_lr x the rate and the same decay per step.
    norms = [p for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters() if p.requires_grad]
    biases = list({id(p): p for p in norms}.values())
    others = [p for p in net.parameters() if p.requires_grad and all(p is not b for b in biases)]
    bias_lr = recipe["lr"] * recipe["bias_lr"]
    groups = [dict(params=biases, lr=bias_lr, base_lr=bias_lr, weight_decay=recipe["wd"] / recipe["bias_lr"]),
              dict(params=others, lr=recipe["lr"], base_lr=recipe["lr"], weight_decay=recipe["wd"])]
    optimizer = torch.optim.SGD(groups, lr=recipe["lr"], momentum=recipe["momentum"], nesterov=True)
    steps_per_epoch = math.ceil(len(y_train) / recipe["batch"])
    total_steps = recipe["epochs"] * steps_per_epoch

    def train_step(precision: str, batch: torch.Tensor, flip: torch.Tensor | None = None) -> tuple[float, int]:
        xb = augment(x_train[batch], flip if flip is not None else torch.zeros(len(batch), dtype=torch.bool),
                     recipe["translate"], recipe["cutout"], gen)
        xb = xb.contiguous(memory_format=torch.channels_last)
        with autocast_for(device, precision):
            logits = net(xb)[1] * recipe["logit_scale"]
            loss = F.cross_entropy(logits.float(), y_train[batch], label_smoothing=LABEL_SMOOTHING)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item(), (logits.argmax(1) == y_train[batch]).sum().item()

    net.to(memory_format=torch.channels_last)
    settings = dict(arch=args.arch, seed=args.seed, subset=subset, smoke=args.smoke, **{k: recipe[k] for k in ("epochs", "batch", "lr")})
    checkpoint_dir = args.checkpoints or REPO / ".cache" / "train" / args.arch
    checkpoint_path = checkpoint_dir / "checkpoint.pt"
    state = {"epoch": 0, "step": 0, "seconds": 0.0, "history": [], "lookahead": None}
    if args.resume and checkpoint_path.exists():
        saved = torch.load(checkpoint_path, map_location=device)
        if saved["settings"] != settings:
            raise SystemExit(f"{checkpoint_path} is of another run ({saved['settings']}), not {settings}: resume it with its own flags")
        net.load_state_dict(saved["net"])
        optimizer.load_state_dict(saved["optimizer"])
        gen.set_state(saved["generator"])
        state = saved["state"]
        precision, precision_info = saved["precision"], saved["precision_info"]
        print(f"resuming {checkpoint_path} after epoch {state['epoch']} ({state['seconds']:.0f}s trained)", flush=True)
    else:
        snapshot = {k: v.clone() for k, v in net.state_dict().items()}, optimizer.state_dict()
        probe = torch.randperm(len(y_train), generator=gen)[: recipe["batch"]].to(device)
        if args.smoke and args.precision == "auto":  # seconds of training: not worth timing both
            precision, precision_info = "fp32", {"chosen": "fp32", "by": "smoke run"}
        else:
            precision, precision_info = choose_precision(args.precision, device, train_step, probe)
        net.load_state_dict(snapshot[0])
        optimizer.load_state_dict(snapshot[1])
    lookahead = None
    if state["lookahead"] is not None:
        lookahead = Lookahead(net)
        lookahead.ema = state["lookahead"]
    # Flips alternate: a random half mirrored in even epochs, the other half in odd ones.
    flip_half = torch.rand(len(y_train), generator=torch.Generator().manual_seed(args.seed)) < 0.5
    cpu = cpu_model()
    hardware = torch.cuda.get_device_name() if device.type == "cuda" else f"{cpu}, {args.threads} threads"

    print(f"{args.arch}: {parameter_count(net):,} parameters; {len(y_train):,} train / {len(y_val):,} val images; "
          f"{recipe['epochs']} epochs of batch {recipe['batch']} on {hardware} in {precision} "
          f"({precision_info}; torch {torch.__version__})", flush=True)
    for epoch in range(state["epoch"] + 1, recipe["epochs"] + 1):
        model.train()
        if whiten is not None:
            whiten.bias.requires_grad_(epoch <= WHITEN_BIAS_EPOCHS)
        epoch_start = time.perf_counter()
        order = torch.randperm(len(y_train), generator=gen).to(device)
        flip = flip_half ^ (epoch % 2 == 0)
        loss_sum, correct, seen = 0.0, 0, 0
        for step, batch in enumerate(order.split(recipe["batch"]), 1):
            multiplier = lr_multiplier(state["step"], total_steps, recipe["schedule"])
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * multiplier
            loss, right = train_step(precision, batch, flip[batch.cpu()])
            state["step"] += 1
            loss_sum, correct, seen = loss_sum + loss * len(batch), correct + right, seen + len(batch)
            if recipe["lookahead"] and epoch >= LOOKAHEAD["start_epoch"] and state["step"] % LOOKAHEAD["every"] == 0:
                if lookahead is None:
                    lookahead = Lookahead(net)
                else:
                    decay = LOOKAHEAD["decay"] ** LOOKAHEAD["every"] * (state["step"] / total_steps) ** LOOKAHEAD["power"]
                    lookahead.update(net, decay)
            if not args.smoke and step % max(1, steps_per_epoch // 4) == 0 and step < steps_per_epoch:
                elapsed = time.perf_counter() - epoch_start
                print(f"  epoch {epoch} step {step}/{steps_per_epoch}  loss {loss_sum / seen:.4f}  {seen / elapsed:5.0f} images/s", flush=True)
        if lookahead is not None:
            lookahead.update(net, 1.0)
        train_seconds = time.perf_counter() - epoch_start
        with autocast_for(device, precision):
            val_acc = evaluate(model, x_val, y_val)
        state["seconds"] += time.perf_counter() - epoch_start
        state["epoch"] = epoch
        state["history"].append({"epoch": epoch, "loss": loss_sum / seen, "trainAccuracy": correct / seen, "validationAccuracy": val_acc,
                                 "imagesPerSecond": seen / train_seconds, "seconds": state["seconds"]})
        left = state["seconds"] / epoch * (recipe["epochs"] - epoch)
        print(f"epoch {epoch:2d}/{recipe['epochs']}  loss {loss_sum / seen:.4f}  train {100 * correct / seen:6.2f}%  "
              f"val {100 * val_acc:6.2f}%  {time.perf_counter() - epoch_start:5.1f}s  {seen / train_seconds:.0f} images/s  "
              f"{left / 60:.0f} min left", flush=True)
        if not args.smoke or args.checkpoints:
            state["lookahead"] = lookahead.ema if lookahead is not None else None
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            torch.save({"settings": settings, "net": net.state_dict(), "optimizer": optimizer.state_dict(), "generator": gen.get_state(),
                        "state": state, "precision": precision, "precision_info": precision_info}, checkpoint_path.with_suffix(".tmp"))
            checkpoint_path.with_suffix(".tmp").replace(checkpoint_path)
    train_seconds = state["seconds"]
    net = net.float().to("cpu", memory_format=torch.contiguous_format)
    with torch.no_grad():  # the logit scale of training becomes part of the head
        net.head.weight.mul_(recipe["logit_scale"])
        net.head.bias.mul_(recipe["logit_scale"])
    # The graph is one pass; the mirror pass is a serving option (workers/classify/flip-average.ts).
    accuracy = mirror_accuracies(net, x_val.cpu(), y_val.cpu())
    val_acc = accuracy["flipAveraged"]

    manifest = {
        "id": args.arch,
        "version": int(out.name) if out.name.isdigit() else 1,
        "name": NAMES[args.arch],
        "architecture": {"name": args.arch, "summary": SUMMARIES[args.arch], "options": options},
        "dataset": "CIFAR-10",
        "task": "image-classification",
        "labels": LABELS,
        "input": {
            "layout": "NCHW", "channels": 3, "colorSpace": "rgb", "height": 32, "width": 32,
            "scale": 1 / 255, "mean": mean, "std": std, "resize": "center-crop", "mirrorable": True,
        },
        "embeddingSize": net.embedding_size,
        "metrics": {
            "validationAccuracy": round(val_acc, 5),
            "singlePassValidationAccuracy": round(accuracy["singlePass"], 5),
            "validationSet": f"{len(y_val):,} held-out CIFAR-10 training images (last 500 of each class); validationAccuracy "
                             "with the mirror image averaged in (flip_average=true, the default), singlePass without",
        },
        "training": {
            "script": "scripts/train_cifar.py",
            "smoke": args.smoke,
            "device": device.type,
            "recipeComplete": recipe["epochs"] == RECIPES[args.arch]["epochs"] and not subset,
            "epochs": recipe["epochs"],
            "batchSize": recipe["batch"],
            "optimizer": f"SGD Nesterov {recipe['momentum']}, weight decay {recipe['wd']}, peak LR {recipe['lr']} "
                         f"(norm biases x{recipe['bias_lr']}), schedule {recipe['schedule']} (start, peak at, end)"
                         + (", lookahead EMA" if recipe["lookahead"] else "")
                         + (f", logits x{recipe['logit_scale']:.3g} in training" if recipe["logit_scale"] != 1 else "")
                         + (", batch-norm scales frozen at 1" if recipe["frozen_bn_scale"] else ""),
            "precision": precision_info,
            "augmentation": f"translate <= {recipe['translate']} px (reflect), horizontal flip alternating by epoch"
                            + (f", cutout {recipe['cutout']} px" if recipe["cutout"] else ""),
            "labelSmoothing": LABEL_SMOOTHING,
            "trainImages": len(y_train),
            "seed": args.seed,
            "wallSeconds": round(train_seconds, 1),
            "hardware": hardware,
            "cpu": cpu,
            "history": [{k: round(v, 5) for k, v in h.items()} for h in state["history"]],
            "torch": torch.__version__,
        },
    }
    full = write_model_folder(net, out, manifest)
    write_curves_svg(state["history"], out / "training-curves.svg", f"{args.arch}: {recipe['epochs']} epochs on {hardware}, {precision}")
    print(json.dumps({"out": str(out), "sha256": full["artifact"]["sha256"], "bytes": full["artifact"]["bytes"]}))
    print(f"final: validation accuracy {100 * val_acc:.2f}% flip-averaged, {100 * accuracy['singlePass']:.2f}% single pass, "
          f"on {len(y_val):,} images; training {train_seconds:.1f}s on {hardware}", flush=True)


if __name__ == "__main__":
    main()
