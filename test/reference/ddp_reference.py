#!/usr/bin/python3
"""PyTorch's own DistributedDataParallel on the training test/dist/ddp.test.ts runs with ours.

Usage (torchrun with Debian's python3-torch; the test runs it):
    torchrun --nproc_per_node 2 --master_port P test/reference/ddp_reference.py IN.json OUT.json
IN.json, written by the test:
    {"x": {"shape": [N, C, H, W], "data": [...]}, "y": [int, ...],
     "params": {name: {"shape": [...], "data": [...]}},  # rank 0's initial weights
     "batches": [[[int, ...] per rank] per step],          # DistributedSampler's indices
     "sgd": {"lr": float, "momentum": float, "weight_decay": float}}
OUT.json (rank 0): {"torch": version, "final": {name: [flat values]}}, and every rank checks that
its final parameters equal rank 0's.
The model is PlainCnn of test/dist/workers/ddp-training.ts: conv(3→4, 3x3, pad 1), ReLU,
conv(4→6, 3x3, stride 2, pad 1), ReLU, mean over H and W, linear(6→3); float64, Gloo, one thread.
"""
import json
import os
import sys

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


class PlainCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.fc(h.mean(dim=(2, 3)))


def tensor(t):
    return torch.tensor(t["data"], dtype=torch.float64).reshape(t["shape"])


def main():
    src, out = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    with open(src) as f:
        spec = json.load(f)
    x, y = tensor(spec["x"]), torch.tensor(spec["y"], dtype=torch.int64)
    model = PlainCnn().double()
    if rank == 0:
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(tensor(spec["params"][name]))
    # Other ranks keep their own random start: DDP's constructor broadcasts rank 0's.
    ddp = nn.parallel.DistributedDataParallel(model)
    sgd = spec["sgd"]
    opt = torch.optim.SGD(model.parameters(), lr=sgd["lr"], momentum=sgd["momentum"], weight_decay=sgd["weight_decay"])
    for step in spec["batches"]:
        idx = torch.tensor(step[rank], dtype=torch.int64)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(ddp(x[idx]), y[idx]).backward()
        opt.step()
    final = {n: p.detach().reshape(-1).tolist() for n, p in model.named_parameters()}
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, final)
    assert all(g == final for g in gathered), "PyTorch's DDP ranks differ"
    if rank == 0:
        with open(out + ".tmp", "w") as f:
            json.dump({"torch": torch.__version__, "final": final}, f)
        os.replace(out + ".tmp", out)
    dist.barrier()
    # Leave without Python's teardown: in torch 1.13 freeing the DDP object at exit can deadlock
    # (~Reducer joins a Gloo thread that waits for the GIL the exiting thread holds).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
