#!/usr/bin/python3
"""ONNX files written by torch.onnx.export, for the adafilter ONNX import tests (torch 1.13).

Usage (Debian's python3, which has torch; the pyenv python3 on PATH does not):
    /usr/bin/python3 test/reference/make_onnx.py OUT_DIR

Writes into OUT_DIR, for each case NAME:
    NAME.onnx         the exported eval-mode model (input "input" [N, 3, S, S], output "logits", N dynamic)
    NAME.input.bin    a batch of inputs, float32 little-endian
    NAME.logits.bin   PyTorch's eval-mode logits for it, float32 little-endian
and cases.json describing them (arch, classes, input shape, how it was exported).

Cases: torchvision resnet18 (64 px), torchvision mobilenet_v2 ×0.5 (64 px), adafilter's CIFAR
resnet20 (make_models.py's CifarResNet, 32 px) exported the default way (eval: Conv+BN fused, the
initializers renamed onnx::Conv_N), and resnet20 again with training=PRESERVE and no constant
folding, where BatchNormalization nodes and the state-dict names survive. Weights are seeded
random; BN statistics come from a few train-mode batches and BN affine parameters are randomised,
so that a wrong BN mapping shows in the outputs. Deterministic: fixed seeds, one thread.
"""
import json
import os
import sys

import torch
import torchvision.models as tvm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_models import CifarResNet  # noqa: E402

torch.set_num_threads(1)

# name: (arch for adafilter, builder, classes, input size, batch, export mode)
CASES = {
    "resnet18": ("resnet18", lambda c: tvm.resnet18(num_classes=c), 10, 64, 3, "eval"),
    "mobilenetv2-0.5": ("mobilenetv2-0.5", lambda c: tvm.mobilenet_v2(width_mult=0.5, num_classes=c), 10, 64, 3, "eval"),
    "resnet20": ("resnet20", lambda c: CifarResNet(3, num_classes=c), 10, 32, 4, "eval"),
    "resnet20-preserve": ("resnet20", lambda c: CifarResNet(3, num_classes=c), 7, 32, 4, "preserve"),
}


def make(name, out_dir):
    arch, build, classes, size, batch, mode = CASES[name]
    torch.manual_seed(0)
    model = build(classes)
    g = torch.Generator().manual_seed(1)
    # Running statistics from real (random) batches, then randomised affine parameters on top.
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, size, size, generator=g) * 1.5 + 0.2)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
        if isinstance(model, tvm.MobileNetV2):
            # torchvision starts this head at std 0.01, which would make any error look tiny.
            model.classifier[1].weight.mul_(100)
    model.eval()
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = model(x)
    kw = {}
    if mode == "preserve":
        kw = {"training": torch.onnx.TrainingMode.PRESERVE, "do_constant_folding": False}
    torch.onnx.export(model, x, os.path.join(out_dir, name + ".onnx"), input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=13, **kw)
    x.numpy().astype("<f4").tofile(os.path.join(out_dir, name + ".input.bin"))
    logits.numpy().astype("<f4").tofile(os.path.join(out_dir, name + ".logits.bin"))
    return {"arch": arch, "classes": classes, "input": [batch, 3, size, size], "mode": mode}


def main(argv):
    if len(argv) != 2:
        raise SystemExit(__doc__)
    out_dir = argv[1]
    os.makedirs(out_dir, exist_ok=True)
    cases = {name: make(name, out_dir) for name in CASES}
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv)
