#!/usr/bin/python3
"""PyTorch peer for the adafilter throughput benchmark.

Long-lived child process speaking JSON lines: one JSON object per line on
stdin, one JSON reply per line on stdout (flushed after each reply).
Anything else the process prints goes to stderr, so stdout carries only
replies.

Commands
  {"cmd":"setup","arch":"resnet20"|"resnet18-cifar","batch":32,"threads":2,
   "channels_last":false,"method":"finetune","seed":0,"precision":"fp32"|"bf16",
   "device":"cpu"|"cuda:N"}
      -> {"ok":true,"torch":"<torch.__version__>","arch":...,"batch":...,
          "threads":...,"channels_last":...,"method":...,"precision":...,
          "params":N,"forward_flops":F}
      precision bf16: forward (and loss) under
      torch.autocast(<device type>, dtype=torch.bfloat16); weights, gradients
      and the SGD step stay fp32. On CUDA every timed step ends with
      torch.cuda.synchronize().
      params = number of parameter elements (BN running stats excluded);
      forward_flops = 2 * MACs of one forward pass over the whole batch
      (conv2d + linear MACs only, counted with forward hooks; bias adds,
      BN, ReLU, pooling are not counted).
  {"cmd":"time","mode":"forward"|"train","steps":5,"warmup":2}
      -> {"ok":true,"mode":...,"times":[seconds per timed step, ...]}
      forward: model.eval() under torch.no_grad().
      train:   model.train(); zero_grad(set_to_none=True); forward;
               cross_entropy; backward; SGD step.
  {"cmd":"rss"}   -> {"ok":true,"peak_rss_mb":float}  (ru_maxrss / 1024)
  {"cmd":"quit"}  -> {"ok":true} then exit 0 (EOF on stdin also exits 0)
Any error -> {"ok":false,"error":"..."} and the peer keeps serving.

Run with Debian's /usr/bin/python3 (the one that has torch).
"""
import json
import resource
import sys
import time
import traceback

import torch
import torch.nn as nn
import torch.nn.functional as F

# Keep the protocol channel clean: anything printed by accident goes to stderr.
_OUT = sys.stdout
sys.stdout = sys.stderr

ARCHS = ("resnet20", "resnet18-cifar")
METHODS = ("finetune",)
PRECISIONS = ("fp32", "bf16")


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------
class BasicBlock(nn.Module):
    def __init__(self, in_ch, out_ch, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch, eps=1e-5, momentum=0.1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch, eps=1e-5, momentum=0.1)
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_ch, eps=1e-5, momentum=0.1),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """3x3 stem (stride 1, pad 1, no bias) + BN + ReLU, stages of BasicBlocks
    (stride 2 at the first block of every stage but the first), GAP, linear."""

    def __init__(self, widths, blocks, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0], eps=1e-5, momentum=0.1)
        layers = []
        in_ch = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            stage = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                stage.append(BasicBlock(in_ch, w, stride))
                in_ch = w
            layers.append(nn.Sequential(*stage))
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(in_ch, num_classes)  # default nn.Linear init
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def build_model(arch):
    if arch == "resnet20":
        return CifarResNet([16, 32, 64], [3, 3, 3])
    if arch == "resnet18-cifar":
        return CifarResNet([64, 128, 256, 512], [2, 2, 2, 2])
    raise ValueError("unknown arch %r (expected one of %s)" % (arch, ", ".join(ARCHS)))


def count_forward_flops(model, x):
    """2 * (conv2d + linear MACs) of one forward pass over the whole batch x."""
    macs = [0]

    def conv_hook(m, inp, out):
        kh, kw = m.kernel_size
        macs[0] += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m, inp, out):
        macs[0] += out.numel() * m.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return 2 * macs[0]


# --------------------------------------------------------------------------
# Peer state + commands
# --------------------------------------------------------------------------
class Peer:
    def __init__(self):
        self.model = None

    def setup(self, req):
        arch = req.get("arch", "resnet20")
        batch = int(req.get("batch", 32))
        threads = int(req.get("threads", 1))
        channels_last = bool(req.get("channels_last", False))
        method = req.get("method", "finetune")
        seed = int(req.get("seed", 0))
        precision = req.get("precision", "fp32")
        device = torch.device(req.get("device", "cpu"))
        if precision not in PRECISIONS:
            raise ValueError("unsupported precision %r (expected one of %s)" % (precision, ", ".join(PRECISIONS)))
        if arch not in ARCHS:
            raise ValueError("unknown arch %r (expected one of %s)" % (arch, ", ".join(ARCHS)))
        if method not in METHODS:
            raise ValueError("unsupported method %r (the PyTorch peer implements: %s)"
                             % (method, ", ".join(METHODS)))
        if batch < 1:
            raise ValueError("batch must be >= 1")
        if threads < 1:
            raise ValueError("threads must be >= 1")

        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        model = build_model(arch)
        model = model.to(device)
        size = int(req.get("input_size", 32))
        x = torch.randn(batch, 3, size, size).to(device)
        y = torch.randint(0, 10, (batch,), dtype=torch.int64).to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        flops = count_forward_flops(model, x)
        params = sum(p.numel() for p in model.parameters())

        self.model, self.x, self.y, self.opt = model, x, y, opt
        self.bf16 = precision == "bf16"
        self.device = device
        return {
            "ok": True,
            "torch": torch.__version__,
            "arch": arch,
            "batch": batch,
            "threads": torch.get_num_threads(),
            "channels_last": channels_last,
            "method": method,
            "precision": precision,
            "device": str(device),
            "params": params,
            "forward_flops": flops,
        }

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def _forward_step(self):
        with torch.no_grad(), self._autocast():
            self.model(self.x)

    def _train_step(self):
        self.opt.zero_grad(set_to_none=True)
        with self._autocast():
            out = self.model(self.x)
            loss = F.cross_entropy(out, self.y)
        loss.backward()
        self.opt.step()

    def time(self, req):
        if self.model is None:
            raise RuntimeError("no model: send setup first")
        mode = req.get("mode", "forward")
        steps = int(req.get("steps", 5))
        warmup = int(req.get("warmup", 2))
        if steps < 0 or warmup < 0:
            raise ValueError("steps and warmup must be >= 0")
        if mode == "forward":
            self.model.eval()
            step = self._forward_step
        elif mode == "train":
            self.model.train()
            step = self._train_step
        else:
            raise ValueError("unknown mode %r (expected forward or train)" % (mode,))
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        for _ in range(warmup):
            step()
        sync()
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            sync()
            times.append(time.perf_counter() - t0)
        return {"ok": True, "mode": mode, "times": times}

    def rss(self, req):
        return {"ok": True,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def reply(obj):
    _OUT.write(json.dumps(obj) + "\n")
    _OUT.flush()


def main():
    peer = Peer()
    handlers = {"setup": peer.setup, "time": peer.time, "rss": peer.rss}
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("request must be a JSON object")
            cmd = req.get("cmd")
            if cmd == "quit":
                reply({"ok": True})
                return 0
            if cmd not in handlers:
                raise ValueError("unknown cmd %r" % (cmd,))
            reply(handlers[cmd](req))
        except Exception as e:  # keep serving after any error
            traceback.print_exc(file=sys.stderr)
            reply({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
