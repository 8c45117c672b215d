#!/usr/bin/python3
"""PyTorch's side of bench/profile-forward.js: eval-mode forward passes of the peer's model
(bench/peer/throughput.py), one thread, for
    valgrind --tool=callgrind /usr/bin/python3 bench/profile-forward.py ARCH BATCH PASSES"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer"))
import throughput  # noqa: E402  (its import sends stray prints to stderr; harmless here)

arch, batch, passes, size = (sys.argv[1:] + ["resnet20", "32", "3", "32"][len(sys.argv) - 1:])[:4]
torch.set_num_threads(1)
torch.manual_seed(0)
model = throughput.build_model(arch).eval()
x = torch.randn(int(batch), 3, int(size), int(size))
total = 0.0
with torch.no_grad():
    for _ in range(int(passes)):
        total += model(x).sum().item()
print(json.dumps({"arch": arch, "batch": int(batch), "passes": int(passes), "sum": total}), file=sys.stderr)
