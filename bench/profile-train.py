#!/usr/bin/python3
"""PyTorch's side of bench/profile-train.js: SGD training steps of the peer's model
(bench/peer/throughput.py), one thread, for
    valgrind --tool=callgrind /usr/bin/python3 bench/profile-train.py ARCH BATCH STEPS"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer"))
import throughput  # noqa: E402

arch, batch, steps = (sys.argv[1:] + ["resnet20", "8", "4"][len(sys.argv) - 1:])[:3]
torch.set_num_threads(1)
torch.manual_seed(0)
model = throughput.build_model(arch).train()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
x = torch.randn(int(batch), 3, 32, 32)
y = torch.randint(0, 10, (int(batch),))
total = 0.0
for _ in range(int(steps)):
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    total += loss.item()
print(json.dumps({"arch": arch, "batch": int(batch), "steps": int(steps), "sum": total}), file=sys.stderr)
