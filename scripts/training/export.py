"""Export a trained network to ONNX and write the manifest the Worker serves it by.

Layout (one folder per model, one subfolder per version, artifact and manifest side by side):
    models/<id>/<version>/model.onnx      the graph, opset 17, dynamic batch axis
    models/<id>/<version>/manifest.json   everything a server needs and a user wants to know
    models/<id>/<version>/model.pt        the PyTorch state_dict it was exported from
    models/<id>/<version>/head.bin        its trained head and replay exemplars (head.py)
"""
import argparse
import datetime
import hashlib
import json
import subprocess
from pathlib import Path

import onnx
import torch

from .architectures import FlipAveraged, build, parameter_count
from .datasets import REPO
from .head import write_head
from .quantize import load_quantized_state
from .static_quantization import install_activation_quantizers

OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAMES = ["embedding", "logits"]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_onnx(model: torch.nn.Module, input_shape: list[int], path: Path) -> None:
    """Trace the model at batch 1 and write it with the batch axis left dynamic."""
    model.eval()
    example = torch.zeros(1, *input_shape)
    torch.onnx.export(
        model,
        example,
        str(path),
        opset_version=OPSET,
        input_names=[INPUT_NAME],
        output_names=OUTPUT_NAMES,
        dynamic_axes={name: {0: "batch"} for name in [INPUT_NAME, *OUTPUT_NAMES]},
        do_constant_folding=True,
    )
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def load_checkpoint(model_dir: Path) -> tuple[torch.nn.Module, dict]:
    """Rebuild the PyTorch model of a model folder from its manifest and state_dict."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    architecture = manifest["architecture"]
    model = build(
        architecture["name"],
        flip_average=architecture.get("flipAverage", False),
        channels=manifest["input"]["channels"],
        classes=len(manifest["labels"]),
        **architecture.get("options", {}),
    )
    state = torch.load(model_dir / "model.pt", map_location="cpu")
    if "quantization" in manifest:
        if manifest["quantization"]["scheme"] == "int8-static":
            install_activation_quantizers(model)
        state = load_quantized_state(state, model)
    model.load_state_dict(state)
    return model.eval(), manifest


def model_folders_cli(doc: str) -> list[Path]:
    """The command line of a script over model folders (`doc` its help): their paths, with
    torch's threads set from --threads (default 2)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dirs", type=Path, nargs="+")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    return args.model_dirs


def served_view(model: torch.nn.Module, manifest: dict) -> torch.nn.Module:
    """The network as a request that leaves flip_average to the model runs it: averaged with the
    mirror image for a model trained on mirrors (workers/classify/flip-average.ts)."""
    mirrorable = manifest["input"].get("mirrorable", False)
    return FlipAveraged(model) if mirrorable and not isinstance(model, FlipAveraged) else model


def write_model_folder(model: torch.nn.Module, out_dir: Path, manifest: dict, rewrite=None, state: dict | None = None) -> dict:
    """Write model.pt, model.onnx and manifest.json into out_dir; return the full manifest.

    `manifest` carries what only the training script knows (id, labels, metrics, settings);
    this fills in what is measured from the artifact itself. `rewrite`, if given, transforms the
    exported onnx.ModelProto (quantisation) before it is written and hashed; `state`, if given,
    is saved as model.pt in place of the model's own state_dict (a quantised model's compact one)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(state if state is not None else model.state_dict(), out_dir / "model.pt")
    onnx_path = out_dir / "model.onnx"
    inp = manifest["input"]
    export_onnx(model, [inp["channels"], inp["height"], inp["width"]], onnx_path)
    if rewrite:
        graph = rewrite(onnx.load(str(onnx_path)))
        onnx.checker.check_model(graph, full_check=True)
        onnx.save(graph, str(onnx_path))

    full = {
        **manifest,
        "parameters": parameter_count(model),
        "artifact": {
            "file": onnx_path.name,
            "format": "onnx",
            "opset": OPSET,
            "bytes": onnx_path.stat().st_size,
            "sha256": sha256(onnx_path),
            "inputName": INPUT_NAME,
            "outputs": {"embedding": OUTPUT_NAMES[0], "logits": OUTPUT_NAMES[1]},
            "producer": f"torch {torch.__version__}",
        },
        "exportedAt": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    (out_dir / "manifest.json").write_text(json.dumps(full, indent=2) + "\n")
    write_head(model, out_dir)
    return measure_serving(out_dir)


def measure_serving(out_dir: Path) -> dict:
    """Add the manifest's `serving` section (memory in onnxruntime-web, servable or not) with
    scripts/measure-serving-memory.ts, run by the project's own Node; return the manifest."""
    node = REPO / "node_modules" / ".bin" / "node"
    if not node.exists():
        raise SystemExit(f"{node} is missing: run `npm ci` first, the export measures the model with onnxruntime-web")
    subprocess.run([str(node), str(REPO / "scripts" / "measure-serving-memory.ts"), str(out_dir)], check=True)
    return json.loads((out_dir / "manifest.json").read_text())
