#!/usr/bin/python3
"""Export a torchvision classifier to ONNX the way users bring them, to try `npm run models:add`
with a network this project did not design (and to test it: test/integration/bring-your-own.test.ts).

    /usr/bin/python3 scripts/export_torchvision.py resnet18 /tmp/resnet18.onnx
    /usr/bin/python3 scripts/export_torchvision.py mobilenet_v2 /tmp/mnv2-nhwc.onnx --nhwc --softmax --opset 13

Weights are torchvision's random initialisation with seed 0, batch norms calibrated on random
images (this machine cannot download the pretrained ones; a checkpoint of your own goes in
with --weights). The variants wrap the net
as exporters from other frameworks leave it: NHWC input (Keras/TensorFlow), a final Softmax,
a fixed batch of 1, uint8 input with the normalisation inside the graph.
"""
import argparse
from pathlib import Path

import torch
import torchvision

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Variant(torch.nn.Module):
    """The net behind the interface a user's export has."""

    def __init__(self, net, nhwc: bool, softmax: bool, uint8: bool):
        super().__init__()
        self.net, self.nhwc, self.softmax, self.uint8 = net, nhwc, softmax, uint8
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x):
        if self.nhwc:
            x = x.permute(0, 3, 1, 2)
        if self.uint8:
            x = (x.float() / 255 - self.mean) / self.std
        y = self.net(x)
        return torch.softmax(y, dim=1) if self.softmax else y


@torch.no_grad()
def calibrate_batch_norms(net, size: int, batches: int = 4):
    """Running statistics from a few random batches: a randomly initialised net in eval mode
    otherwise multiplies its activations block after block, to logits of 1e6 and more."""
    for module in net.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the batches
    net.train()
    for _ in range(batches):
        net((torch.rand(8, 3, size, size) - 0.45) / 0.226)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arch", help="a torchvision.models builder: resnet18, mobilenet_v2, efficientnet_b0, ...")
    p.add_argument("out", type=Path)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--weights", type=Path, help="a state_dict to load instead of the random initialisation")
    p.add_argument("--nhwc", action="store_true")
    p.add_argument("--softmax", action="store_true")
    p.add_argument("--uint8", action="store_true")
    p.add_argument("--fixed-batch", action="store_true", help="batch dimension fixed at 1")
    args = p.parse_args()
    torch.manual_seed(0)
    net = getattr(torchvision.models, args.arch)(num_classes=args.classes)
    if args.weights:
        net.load_state_dict(torch.load(args.weights, map_location="cpu"))
    else:
        calibrate_batch_norms(net, args.size)
    model = Variant(net, args.nhwc, args.softmax, args.uint8).eval()
    shape = (1, args.size, args.size, 3) if args.nhwc else (1, 3, args.size, args.size)
    example = torch.randint(0, 256, shape, dtype=torch.uint8) if args.uint8 else torch.rand(shape)
    dynamic = None if args.fixed_batch else {"input": {0: "batch"}, "output": {0: "batch"}}
    torch.onnx.export(model, example, str(args.out), input_names=["input"], output_names=["output"],
                      dynamic_axes=dynamic, opset_version=args.opset, do_constant_folding=True)
    print(f"{args.out}: {args.arch}, {args.classes} classes, input {'uint8' if args.uint8 else 'float32'} "
          f"{'x'.join(map(str, shape))}{' (fixed batch)' if args.fixed_batch else ''}, opset {args.opset}"
          f"{', softmax' if args.softmax else ''}")


if __name__ == "__main__":
    main()
