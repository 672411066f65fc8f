"""Export a trained network to ONNX and write the manifest the Worker serves it by.

Layout (one folder per model, one subfolder per version, artifact and manifest side by side):
    models/<id>/<version>/model.onnx      the graph, opset 17, dynamic batch axis
    models/<id>/<version>/manifest.json   everything a server needs and a user wants to know
    models/<id>/<version>/model.pt        the PyTorch state_dict it was exported from
"""
import datetime
import hashlib
import json
from pathlib import Path

import onnx
import torch

from .architectures import build, parameter_count

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
    model = build(
        manifest["architecture"]["name"],
        channels=manifest["input"]["channels"],
        classes=len(manifest["labels"]),
    )
    model.load_state_dict(torch.load(model_dir / "model.pt", map_location="cpu"))
    return model.eval(), manifest


def write_model_folder(model: torch.nn.Module, out_dir: Path, manifest: dict) -> dict:
    """Write model.pt, model.onnx and manifest.json into out_dir; return the full manifest.

    `manifest` carries what only the training script knows (id, labels, metrics, settings);
    this fills in what is measured from the artifact itself."""
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out_dir / "model.pt")
    onnx_path = out_dir / "model.onnx"
    inp = manifest["input"]
    export_onnx(model, [inp["channels"], inp["height"], inp["width"]], onnx_path)

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
    return full
