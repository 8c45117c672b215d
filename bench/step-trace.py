#!/usr/bin/python3
"""PyTorch's side of bench/step-trace.js: one step of the throughput peer's model (bench/peer/throughput.py),
as `bench throughput` times it, recorded by PyTorch's profiler (record_shapes) op by op, and the
minor page faults of further steps.
    /usr/bin/python3 bench/step-trace.py ARCH PRECISION MODE BATCH THREADS TRACE_FILE FAULT_STEPS
writes one JSON line per op ({name, dtypes, shapes}, in start order) to TRACE_FILE and prints
{"faults_per_step": F} on stdout."""
import json
import os
import resource
import sys

import torch
import torch.nn.functional as F
from torch.autograd import profiler

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer"))
import throughput  # noqa: E402  (it sends stray prints to stderr: keep our own reply on the real stdout)

out = sys.__stdout__
arch, precision, mode, batch, threads, trace_file, fault_steps = sys.argv[1:8]
torch.set_num_threads(int(threads))
torch.manual_seed(0)
model = throughput.build_model(arch)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
x = torch.randn(int(batch), 3, 32, 32)
y = torch.randint(0, 10, (int(batch),))
bf16 = precision == "bf16"


def train_step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()


def forward_step():
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        model(x).sum().item()


step = train_step if mode == "train" else forward_step
model.train(mode == "train")
step()
step()  # the momentum buffers exist from the second step on, as in the timed steady state
with profiler.profile(record_shapes=True) as p:
    step()
# Start order; an op that starts in the same microsecond as its parent comes after it (longer first).
events = sorted(p.kineto_results.events(), key=lambda e: (e.start_us(), -e.duration_us()))
with open(trace_file, "w") as f:
    for e in events:
        f.write(json.dumps({"name": e.name(), "dtypes": list(e.dtypes()), "shapes": [list(s) for s in e.shapes()]}) + "\n")
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(int(fault_steps)):
    step()
f1 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
out.write(json.dumps({"faults_per_step": (f1 - f0) / int(fault_steps) if int(fault_steps) > 0 else None}) + "\n")
out.flush()
