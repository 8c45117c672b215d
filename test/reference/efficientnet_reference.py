#!/usr/bin/python3
"""Reference weights and outputs of torchvision's EfficientNet-B0 for test/models/efficientnet.test.ts
(Debian's python3 with torch 1.13 / torchvision 0.14; the pyenv python3 on PATH has no torch).

Usage:
    /usr/bin/python3 test/reference/efficientnet_reference.py fixtures OUT_DIR
        Writes into OUT_DIR: efficientnet-b0.safetensors (a seeded random torchvision efficientnet_b0
        with 10 classes, torchvision's names), efficientnet-b0-timm.safetensors (the same weights
        under timm's names, renamed here independently of the TypeScript map) and
        efficientnet-b0.io.safetensors (input "input" [2, 3, 64, 64], eval-mode "logits" and the
        pooled "features" before the classifier).
    /usr/bin/python3 test/reference/efficientnet_reference.py check WEIGHTS INPUT OUT
        Loads WEIGHTS (written by adafilter) strictly into torchvision's efficientnet_b0, runs
        INPUT's "input" in eval mode and writes "logits" to OUT: the export direction.

Weights are torchvision's init with every BatchNorm's affine parameters and the squeeze-excitation
biases (zero at init) randomised, so that a wrongly loaded tensor shows. The running statistics are
those of a batch of random images passed through in training mode, then perturbed: statistics drawn
at random (make_models.py's randomise_bn) make this 80-layer network forget its input, every image
then giving the same logits, and a test of such outputs could not see a wrong layer.
Deterministic: seed 0, one thread. safetensors is read and written by make_models.py's helpers.
"""
import os
import sys

import torch
import torch.nn as nn
import torchvision.models as tvm
from torchvision.models.efficientnet import MBConv
from torchvision.ops.misc import SqueezeExcitation
from torchvision.ops.stochastic_depth import StochasticDepth

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_models import randomise_bn, read_safetensors, write_safetensors  # noqa: E402

CLASSES = 10


def timm_names(sd):
    """torchvision efficientnet_b0 names → timm's: features.0 → conv_stem/bn1, features.S.J → blocks.S-1.J
    (first stage: conv_dw, bn1, se, conv_pw, bn2; the others: conv_pw, bn1, conv_dw, bn2, se, conv_pwl,
    bn3), features.8 → conv_head/bn2, classifier.1 → classifier."""
    first = {"0.0": "conv_dw", "0.1": "bn1", "1.fc1": "se.conv_reduce", "1.fc2": "se.conv_expand", "2.0": "conv_pw", "2.1": "bn2"}
    other = {"0.0": "conv_pw", "0.1": "bn1", "1.0": "conv_dw", "1.1": "bn2", "2.fc1": "se.conv_reduce",
             "2.fc2": "se.conv_expand", "3.0": "conv_pwl", "3.1": "bn3"}
    out = {}
    for k, v in sd.items():
        p = k.split(".")
        if p[0] == "classifier":
            nk = "classifier." + p[2]
        elif p[1] == "0":
            nk = {"0": "conv_stem", "1": "bn1"}[p[2]] + "." + p[3]
        elif p[1] == "8":
            nk = {"0": "conv_head", "1": "bn2"}[p[2]] + "." + p[3]
        else:
            stage, j = int(p[1]), p[2]
            assert p[3] == "block", k
            layer = (first if stage == 1 else other)[p[4] + "." + p[5]]
            nk = "blocks.%d.%s.%s.%s" % (stage - 1, j, layer, ".".join(p[6:]))
        out[nk] = v
    return out


def build(classes):
    return tvm.efficientnet_b0(num_classes=classes)


def features(model, x):
    return torch.flatten(model.avgpool(model.features(x)), 1)


def calibrate(model, g):
    """Running statistics of one training-mode batch (momentum 1, no stochastic depth), perturbed."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    depth = [m for m in model.modules() if isinstance(m, StochasticDepth)]
    for m in bns:
        m.momentum = 1.0
    for m in depth:
        m.p, m.saved_p = 0.0, m.p
    model.train()
    model.features(torch.randn(8, 3, 64, 64, generator=g))
    for m in bns:
        c = m.num_features
        m.momentum = 0.1
        m.running_mean.add_(torch.randn(c, generator=g) * 0.1 * m.running_var.sqrt())
        m.running_var.mul_(torch.rand(c, generator=g) * 0.4 + 0.8)
        m.num_batches_tracked.fill_(7)
    for m in depth:
        m.p = m.saved_p
        del m.saved_p


def fixtures(out_dir):
    torch.manual_seed(0)
    model = build(CLASSES)
    g = torch.Generator().manual_seed(1)
    randomise_bn(model, g)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, SqueezeExcitation):
                for c in (m.fc1, m.fc2):
                    c.bias.copy_(torch.randn(c.bias.shape, generator=g) * 0.5)
            # Residual branches at a fifth of their scale, so the sum stays near unit size through the blocks.
            if isinstance(m, MBConv) and m.use_res_connect:
                m.block[-1][1].weight.mul_(0.2)
        calibrate(model, g)
    model.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = model(x)
        feats = features(model, x)
    sd = dict(model.state_dict())
    meta = {"arch": "efficientnet-b0", "generator": "test/reference/efficientnet_reference.py", "torch": torch.__version__}
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, "efficientnet-b0.safetensors"), sd, meta)
    write_safetensors(os.path.join(out_dir, "efficientnet-b0-timm.safetensors"), timm_names(sd))
    write_safetensors(os.path.join(out_dir, "efficientnet-b0.io.safetensors"), {"input": x, "logits": logits, "features": feats})


def check(weights, inp, out):
    sd = read_safetensors(weights)
    model = build(sd["classifier.1.weight"].shape[0])
    model.load_state_dict(sd, strict=True)
    model.eval()
    with torch.no_grad():
        logits = model(read_safetensors(inp)["input"].float())
    write_safetensors(out, {"logits": logits})


def main(argv):
    torch.set_num_threads(1)
    if len(argv) == 2 and argv[0] == "fixtures":
        fixtures(argv[1])
    elif len(argv) == 4 and argv[0] == "check":
        check(*argv[1:])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
