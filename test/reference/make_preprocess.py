#!/usr/bin/python3
"""Reference for the backbone's own preprocessing (issue 14): torchvision weights with ImageNet inputs.

Usage (Debian's python3, which has torch and torchvision):
    /usr/bin/python3 test/reference/make_preprocess.py OUT_DIR

Writes into OUT_DIR:
    resnet18.safetensors   torchvision resnet18 (1000 classes), random init with seed 0 and
                           randomised BatchNorm (as make_models.py), torchvision names, no
                           adafilter metadata: what a user downloads from torchvision or timm
    images/a/0.png, images/a/1.png, images/b/2.png
                           224x224 RGB images of seeded random pixels (PNG written by hand)
    logits.safetensors     "logits" [3, 1000]: the eval-mode model on those images as
                           torchvision's transforms give them, x/255 then ImageNet mean/std,
                           in the file order above

The test (test/models/preprocess.test.ts) imports the weights with `adafilter models import` and
feeds the PNG files through adafilter's own data pipeline; it must reproduce these logits.
Deterministic: seed 0, one thread.
"""
import os
import struct
import sys
import zlib

import numpy as np
import torch
import torchvision.models as tvm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_models import randomise_bn, write_safetensors  # noqa: E402

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
SIZE = 224
FILES = [("a", "0.png"), ("a", "1.png"), ("b", "2.png")]


def write_png(path, rgb):
    """8-bit RGB PNG: one IDAT of filter-0 scanlines."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 6)))
        f.write(chunk(b"IEND", b""))


def main(argv):
    if len(argv) != 1:
        raise SystemExit(__doc__)
    out = argv[0]
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = tvm.resnet18(num_classes=1000)
    randomise_bn(model, torch.Generator().manual_seed(1))
    model.eval()
    write_safetensors(os.path.join(out, "resnet18.safetensors"), model.state_dict())

    rng = np.random.default_rng(3)
    images = []
    for cls, name in FILES:
        # Smooth-ish content (a random field upsampled) plus noise: not a constant, not pure noise.
        coarse = rng.integers(0, 256, size=(8, 8, 3)).astype(np.float64)
        field = np.kron(coarse, np.ones((SIZE // 8, SIZE // 8, 1)))
        img = np.clip(field + rng.normal(0, 20, size=field.shape), 0, 255).astype(np.uint8)
        os.makedirs(os.path.join(out, "images", cls), exist_ok=True)
        write_png(os.path.join(out, "images", cls, name), img)
        images.append(img)

    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = model(x)
    write_safetensors(os.path.join(out, "logits.safetensors"), {"logits": logits})


if __name__ == "__main__":
    main(sys.argv[1:])
