#!/usr/bin/python3
"""Store an imported model's Conv and Linear weights as int8, in place: `npm run models:add --
--quantize int8` (scripts/add-model.ts) runs it on the served graph it wrote. The head's weight
(--keep) stays fp32, for fine-tuning.

    /usr/bin/python3 scripts/quantize_imported.py models/pets/1/model.onnx --keep fc.weight
"""
import argparse
import sys
from pathlib import Path

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training.quantize import quantize_graph  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path)
    p.add_argument("--keep", action="append", default=[], help="an initializer to leave fp32 (the head's weight)")
    args = p.parse_args()
    served = quantize_graph(onnx.load(str(args.model)), "int8", keep=frozenset(args.keep))
    onnx.checker.check_model(served)
    onnx.save(served, str(args.model))


if __name__ == "__main__":
    main()
