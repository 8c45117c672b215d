#!/usr/bin/python3
"""What the AdaFilter training step costs against standard fine-tuning *in PyTorch*, same machine.

Issue 5 asks for AdaFilter's step to cost <= 1.8x finetune's. This script measures the ratio
PyTorch itself gets for the same formulation (docs/methods.md): every conv inside the residual
blocks gated, two convolutions (S frozen: no weight gradient), two training-mode BNs, a lerp
mix, one LSTMCell shared across layers fed GAP(x) through a per-layer projection, a per-layer
head, straight-through Gumbel-sigmoid. So our ratio can be read against what the method costs in
the reference framework, not only against 1.8.

    /usr/bin/python3 bench/peer/adafilter_cost.py [arch=resnet20] [batch=32] [threads=2] [rounds=5]

Prints one JSON object: median train-step seconds of each side and their ratio. Finetune and
AdaFilter alternate in rounds of 3 steps so that machine load hits both alike.
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from throughput import BasicBlock, build_model  # noqa: E402


class Gate(nn.Module):
    def __init__(self, shapes, d=64, h=128):
        super().__init__()
        self.lstm = nn.LSTMCell(d, h)
        self.proj = nn.ModuleList(nn.Linear(cin, d) for cin, _ in shapes)
        self.heads = nn.ModuleList(nn.Linear(h, cout) for _, cout in shapes)
        for q in self.heads:
            nn.init.zeros_(q.bias)
        self.state = None

    def begin(self, batch, ref):
        z = ref.new_zeros(batch, self.lstm.hidden_size)
        self.state = (z, z)

    def __call__(self, layer, x):
        u = self.proj[layer](x.mean((2, 3)))
        self.state = self.lstm(u, self.state)
        z = self.heads[layer](self.state[0])
        u1 = torch.rand_like(z).clamp_(1e-6, 1 - 1e-6)
        s = torch.sigmoid(z + torch.log(u1) - torch.log1p(-u1))  # logistic = G1 - G2
        return s + ((s > 0.5).to(s.dtype) - s).detach()


class GatedConv(nn.Module):
    def __init__(self, conv, bn, gate, index):
        super().__init__()
        self.w_s = nn.Parameter(conv.weight.detach().clone(), requires_grad=False)
        self.w_f = nn.Parameter(conv.weight.detach().clone())
        self.stride, self.padding = conv.stride, conv.padding
        self.bn_s = bn
        self.bn_f = nn.BatchNorm2d(bn.num_features)
        self.bn_f.load_state_dict(bn.state_dict())
        self.gate, self.index = [gate], index

    def forward(self, x):
        g = self.gate[0](self.index, x)
        a = self.bn_f(F.conv2d(x, self.w_f, None, self.stride, self.padding))
        b = self.bn_s(F.conv2d(x, self.w_s, None, self.stride, self.padding))
        return torch.lerp(b, a, g[:, :, None, None])


class AdaFilterNet(nn.Module):
    def __init__(self, net):
        super().__init__()
        blocks = [m for m in net.modules() if isinstance(m, BasicBlock)]
        shapes = []
        for blk in blocks:
            shapes += [(blk.conv1.in_channels, blk.conv1.out_channels), (blk.conv2.in_channels, blk.conv2.out_channels)]
        self.gate = Gate(shapes)
        i = 0
        for blk in blocks:
            blk.conv1 = GatedConv(blk.conv1, blk.bn1, self.gate, i)
            blk.conv2 = GatedConv(blk.conv2, blk.bn2, self.gate, i + 1)
            blk.bn1 = blk.bn2 = nn.Identity()
            i += 2
        self.net = net

    def forward(self, x):
        self.gate.begin(x.size(0), x)
        return self.net(x)


def step_timer(model, x, y):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    model.train()

    def run(n):
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
            out.append(time.perf_counter() - t0)
        return out
    return run


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def main():
    arch, batch, threads, rounds = (sys.argv[1:] + [None] * 4)[:4]
    arch, batch = arch or "resnet20", int(batch or 32)
    threads, rounds = int(threads or 2), int(rounds or 5)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    ft = step_timer(build_model(arch), x, y)
    ada = step_timer(AdaFilterNet(build_model(arch)), x, y)
    ft(2), ada(2)
    tf, ta = [], []
    for _ in range(rounds):
        tf += ft(3)
        ta += ada(3)
    mf, ma = median(tf), median(ta)
    print(json.dumps({"peer": "pytorch " + torch.__version__, "arch": arch, "batch": batch, "threads": threads,
                      "finetune_step_s": mf, "adafilter_step_s": ma, "train_cost_ratio": ma / mf}))


if __name__ == "__main__":
    main()
