#!/usr/bin/python3
"""Reference weights and outputs for the adafilter model tests (PyTorch 1.13 / torchvision 0.14).

Usage (Debian's python3, which has torch; the pyenv python3 on PATH does not):
    /usr/bin/python3 test/reference/make_models.py fixtures [OUT_DIR] [NAME ...]
        Writes NAME.safetensors (weights, torchvision names) and NAME.io.safetensors (input "input",
        eval-mode outputs "logits" and "features") for each NAME. Default OUT_DIR
        test/fixtures/models and the small committed set (resnet20, mobilenetv2-0.5); the tests
        generate the big ones (resnet18, resnet50, mobilenetv2, mobilenetv2-0.5-timm) into a
        temporary folder at test time.
    /usr/bin/python3 test/reference/make_models.py check ARCH WEIGHTS INPUT OUT
        Loads WEIGHTS (a safetensors file written by adafilter) into torchvision's ARCH
        (resnet18, resnet50, mobilenetv2-0.5, ...), runs INPUT's "input" in eval mode, writes
        "logits" to OUT: the export check.

safetensors is written and read by hand (8-byte little-endian header length, JSON header, raw
little-endian data), without the safetensors package. Deterministic: seed 0, one thread.
Weights are random (torchvision's init) with BatchNorm affine parameters and running statistics
randomised too, so that loading them wrongly shows in the outputs.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision.models as tvm
from torchvision.models.resnet import BasicBlock

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "fixtures", "models"))
COMMITTED = ["resnet20", "mobilenetv2-0.5"]

CODES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
         torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}
NP = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32,
      "U8": np.uint8, "BOOL": np.bool_}


def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().tobytes()
        else:
            raw = t.numpy().tobytes()
        header[name] = {"dtype": CODES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = data[8 + n + b:8 + n + end]
        if e["dtype"] == "BF16":
            t = torch.from_numpy(np.frombuffer(raw, dtype=np.int16).copy()).view(torch.bfloat16)
        else:
            t = torch.from_numpy(np.frombuffer(raw, dtype=NP[e["dtype"]]).copy())
        out[name] = t.reshape(e["shape"])
    return out


class CifarResNet(nn.Module):
    """adafilter's CIFAR ResNet (src/models/resnet.ts, stem 'cifar'): 3×3 stem, no max-pool,
    torchvision BasicBlocks with projection shortcuts where the shape changes."""

    def __init__(self, n, widths=(16, 32, 64), num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        inp = widths[0]
        for s, w in enumerate(widths):
            blocks = []
            for i in range(n):
                stride = 2 if (i == 0 and s > 0) else 1
                ds = None
                if stride != 1 or inp != w:
                    ds = nn.Sequential(nn.Conv2d(inp, w, 1, stride=stride, bias=False), nn.BatchNorm2d(w))
                blocks.append(BasicBlock(inp, w, stride, ds))
                inp = w
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*blocks))
        self.nstages = len(widths)
        self.fc = nn.Linear(inp, num_classes)

    def features(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        for s in range(self.nstages):
            x = getattr(self, "layer%d" % (s + 1))(x)
        return x.mean((2, 3))

    def forward(self, x):
        return self.fc(self.features(x))


def tv_features(model, x):
    """Pooled features before the classifier, for torchvision's ResNet and MobileNetV2."""
    if isinstance(model, tvm.MobileNetV2):
        return model.features(x).mean((2, 3))
    if isinstance(model, CifarResNet):
        return model.features(x)
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    for l in (model.layer1, model.layer2, model.layer3, model.layer4):
        x = l(x)
    return torch.flatten(model.avgpool(x), 1)


def build(arch, num_classes=1000):
    if arch == "resnet20":
        return CifarResNet(3, num_classes=num_classes)
    if arch in ("resnet18", "resnet34", "resnet50"):
        return getattr(tvm, arch)(num_classes=num_classes)
    if arch.startswith("mobilenetv2"):
        width = float(arch.split("-")[1]) if "-" in arch else 1.0
        return tvm.mobilenet_v2(width_mult=width, num_classes=num_classes)
    raise SystemExit("unknown arch " + arch)


def randomise_bn(model, g):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.num_batches_tracked.fill_(7)


def timm_names(sd):
    """torchvision MobileNetV2 names → timm's (mobilenetv2_*), written out independently of the
    TypeScript mapping: timm stages hold [1, 2, 3, 4, 3, 3, 1] blocks."""
    repeats = [1, 2, 3, 4, 3, 3, 1]
    where = {}
    idx = 1
    for s, n in enumerate(repeats):
        for j in range(n):
            where[idx] = (s, j)
            idx += 1
    out = {}
    for k, v in sd.items():
        p = k.split(".")
        if p[0] == "classifier":
            nk = "classifier." + p[2]
        elif p[1] == "0":
            nk = {"0": "conv_stem", "1": "bn1"}[p[2]] + "." + p[3]
        elif p[1] == "18":
            nk = {"0": "conv_head", "1": "bn2"}[p[2]] + "." + p[3]
        else:
            s, j = where[int(p[1])]
            rest = p[3:]
            if s == 0:
                table = {("0", "0"): "conv_dw", ("0", "1"): "bn1", ("1",): "conv_pw", ("2",): "bn2"}
            else:
                table = {("0", "0"): "conv_pw", ("0", "1"): "bn1", ("1", "0"): "conv_dw", ("1", "1"): "bn2",
                         ("2",): "conv_pwl", ("3",): "bn3"}
            key = tuple(rest[:2]) if tuple(rest[:2]) in table else tuple(rest[:1])
            nk = "blocks.%d.%d.%s.%s" % (s, j, table[key], ".".join(rest[len(key):]))
        out[nk] = v
    return out


# name: (arch, classes, input size, batch, dtype of the stored weights, timm names)
CONFIGS = {
    "resnet20": ("resnet20", 10, 32, 2, torch.float32, False),
    "mobilenetv2-0.5": ("mobilenetv2-0.5", 10, 64, 2, torch.float16, False),
    "resnet18": ("resnet18", 1000, 64, 2, torch.float32, False),
    "resnet50": ("resnet50", 10, 64, 2, torch.float32, False),
    "mobilenetv2": ("mobilenetv2", 1000, 96, 1, torch.bfloat16, False),
    "mobilenetv2-0.5-timm": ("mobilenetv2-0.5", 10, 64, 2, torch.float32, True),
}


def make(name, out_dir):
    arch, classes, size, batch, dtype, timm = CONFIGS[name]
    torch.manual_seed(0)
    model = build(arch, classes)
    randomise_bn(model, torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        if dtype != torch.float32:
            # Round the float weights to the stored precision, so the reference output is exactly
            # what the file's weights compute in float32.
            for t in model.state_dict().values():
                if t.is_floating_point():
                    t.copy_(t.to(dtype).float())
        x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(2))
        logits = model(x)
        feats = tv_features(model, x)
    sd = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    if timm:
        sd = timm_names(sd)
    meta = {"arch": arch, "generator": "test/reference/make_models.py", "torch": torch.__version__}
    write_safetensors(os.path.join(out_dir, name + ".safetensors"), sd, meta)
    write_safetensors(os.path.join(out_dir, name + ".io.safetensors"),
                      {"input": x, "logits": logits, "features": feats})


def check(arch, weights, inp, out):
    torch.manual_seed(0)
    classes = None
    sd = read_safetensors(weights)
    for k in ("fc.weight", "classifier.1.weight"):
        if k in sd:
            classes = sd[k].shape[0]
    model = build(arch, classes)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()}, strict=True)
    model.eval()
    with torch.no_grad():
        logits = model(read_safetensors(inp)["input"].float())
    write_safetensors(out, {"logits": logits})


def main(argv):
    torch.set_num_threads(1)
    if len(argv) >= 1 and argv[0] == "check":
        check(*argv[1:5])
        return
    if not argv or argv[0] != "fixtures":
        raise SystemExit(__doc__)
    out_dir = argv[1] if len(argv) > 1 else DEFAULT_OUT
    names = argv[2:] or COMMITTED
    os.makedirs(out_dir, exist_ok=True)
    for n in names:
        if n not in CONFIGS:
            raise SystemExit("unknown fixture %s (known: %s)" % (n, ", ".join(CONFIGS)))
        make(n, out_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
