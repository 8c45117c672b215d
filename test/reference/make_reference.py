#!/usr/bin/python3
"""Record PyTorch reference values for the adafilter engine tests.

Usage (from the repository root, with Debian's python3 that has torch):
    /usr/bin/python3 test/reference/make_reference.py [out.json]
Default output: test/fixtures/reference.json.  The output is deterministic
(torch.manual_seed(0), one thread, fixed case order): rerunning it with the
same torch build gives a byte-identical file.

File format
-----------
{
  "format": 1,
  "torch": torch.__version__,          # Debian's build says "1.13.0a0"
  "torch_package": "1.13.1+dfsg-4",    # dpkg version of python3-torch, or null
  "generator": "test/reference/make_reference.py",
  "cases": [Case, ...]
}
Tensor = {"shape": [int...], "dtype": "float32"|"float64"|"int64", "data": [...]}
    data is the row-major (C-order) flat list; a 0-d tensor has shape [] and
    one element.  float32 values are written with the shortest decimal that
    round-trips to the same float32 (parse as double, then round to float32).
Case = {
  "name":   unique case name,
  "op":     the PyTorch callable that produced it, e.g. "torch.nn.functional.conv2d",
  "inputs": {name: Tensor},            # positional/tensor arguments, plus the
                                       # upstream gradient(s) "g" / "g_<out>"
  "params": {kwarg: value},            # non-tensor keyword arguments, PyTorch names
  "output": Tensor | {name: Tensor},   # a dict when the op has several outputs
  "grads":  {input name: Tensor},      # d/d input of sum_k (out_k * g_k).sum()
  "state_after": {name: Tensor}        # only batch_norm training (running stats)
}
Upstream gradient: when "output" is a single Tensor the fixed random tensor is
input "g" (same shape as the output); when "output" is a dict, each float
output k has its own input "g_<k>".  Integer outputs get none.  "grads" holds
only the float inputs that are differentiated (never "g" itself).  Cases with
no backward (argmax, optimisers, schedules) have "grads": {}.
"""
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "fixtures", "reference.json"))


# --------------------------------------------------------------------------
# encoding
# --------------------------------------------------------------------------
def f32(v):
    """Shortest decimal that round-trips to the same float32, as a Python float."""
    if not math.isfinite(v):
        raise ValueError("non-finite value in reference data")
    return float(str(np.float32(v)))


def enc(t):
    t = t.detach().cpu().contiguous()
    shape = list(t.shape)
    if t.dtype == torch.float32:
        data = [f32(v) for v in t.reshape(-1).tolist()]
        dtype = "float32"
    elif t.dtype == torch.float64:
        data = [float(v) for v in t.reshape(-1).tolist()]
        dtype = "float64"
    elif t.dtype == torch.int64:
        data = [int(v) for v in t.reshape(-1).tolist()]
        dtype = "int64"
    else:
        raise TypeError("unsupported dtype %s" % t.dtype)
    return {"shape": shape, "dtype": dtype, "data": data}


def randn(*shape, scale=1.0):
    return torch.randn(*shape) * scale


def rand_pos(*shape, lo=0.5, hi=2.0):
    return torch.rand(*shape) * (hi - lo) + lo


CASES = []


def add_case(name, op, fn, inputs, params=None, grad=None, extra=None):
    """Run fn(inputs_as_leaves) -> tensor | dict of tensors, record forward and
    the gradient of sum_k (out_k * g_k).sum() w.r.t. the inputs named in grad
    (default: every float32 input)."""
    params = params or {}
    if grad is None:
        grad = [k for k, v in inputs.items() if v.dtype == torch.float32]
    leaves = {}
    for k, v in inputs.items():
        leaf = v.detach().clone()
        if k in grad:
            leaf.requires_grad_(True)
        leaves[k] = leaf
    out = fn(leaves, **params)
    rec_inputs = {k: enc(v) for k, v in inputs.items()}
    grads = {}
    if grad:
        outs = {"": out} if torch.is_tensor(out) else out
        loss = None
        for k, o in outs.items():
            if not o.is_floating_point():
                continue
            g = torch.randn(o.shape)
            rec_inputs["g" if k == "" else "g_" + k] = enc(g)
            term = (o * g).sum()
            loss = term if loss is None else loss + term
        loss.backward()
        for k in grad:
            gk = leaves[k].grad
            grads[k] = enc(gk if gk is not None else torch.zeros_like(leaves[k]))
    case = {
        "name": name,
        "op": op,
        "inputs": rec_inputs,
        "params": params,
        "output": enc(out) if torch.is_tensor(out) else {k: enc(v) for k, v in out.items()},
        "grads": grads,
    }
    if extra:
        case.update(extra(leaves))
    assert name not in {c["name"] for c in CASES}, name
    CASES.append(case)


# --------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------
def conv_cases():
    def conv(t, **p):
        return F.conv2d(t["x"], t["w"], t.get("b"), **p)

    def mk(name, n, cin, h, w_, cout, k, bias, **p):
        g = p.get("groups", 1)
        inputs = {"x": randn(n, cin, h, w_), "w": randn(cout, cin // g, k, k, scale=0.5)}
        if bias:
            inputs["b"] = randn(cout, scale=0.5)
        params = {"stride": p.get("stride", 1), "padding": p.get("padding", 0),
                  "dilation": p.get("dilation", 1), "groups": g}
        add_case(name, "torch.nn.functional.conv2d", conv, inputs, params)

    mk("conv2d_3x3_pad1", 2, 3, 6, 6, 4, 3, True, padding=1)
    mk("conv2d_3x3_pad1_nobias", 2, 3, 6, 6, 4, 3, False, padding=1)
    mk("conv2d_stride2_pad1", 2, 3, 7, 7, 4, 3, True, stride=2, padding=1)
    mk("conv2d_dilation2_pad2", 2, 3, 7, 7, 4, 3, True, padding=2, dilation=2)
    mk("conv2d_groups2", 2, 4, 6, 6, 6, 3, True, padding=1, groups=2)
    mk("conv2d_depthwise", 2, 4, 6, 6, 4, 3, True, padding=1, groups=4)
    mk("conv2d_depthwise_nobias", 2, 4, 6, 6, 4, 3, False, padding=1, groups=4)
    mk("conv2d_1x1_stride2_nobias", 2, 4, 6, 6, 8, 1, False, stride=2)


def batch_norm_cases():
    def bn(t, **p):
        # add_case passes clones, so the recorded inputs keep the initial running
        # stats; the in-place updated ones are read back into "state_after"
        return F.batch_norm(t["x"], t["running_mean"], t["running_var"],
                            t["weight"], t["bias"], **p)

    C = 3
    for training in (True, False):
        inputs = {
            "x": randn(4, C, 3, 3, scale=2.0) + 0.5,
            "weight": rand_pos(C),
            "bias": randn(C, scale=0.5),
            "running_mean": randn(C, scale=0.3),
            "running_var": rand_pos(C),
        }
        add_case(
            "batch_norm_train" if training else "batch_norm_eval",
            "torch.nn.functional.batch_norm",
            bn, inputs,
            {"training": training, "momentum": 0.1, "eps": 1e-5},
            grad=["x", "weight", "bias"],
            extra=(lambda t: {"state_after": {"running_mean": enc(t["running_mean"]),
                                              "running_var": enc(t["running_var"])}})
            if training else None,
        )


def pool_cases():
    add_case("max_pool2d_k3_s2_p1", "torch.nn.functional.max_pool2d",
             lambda t, **p: F.max_pool2d(t["x"], **p), {"x": randn(2, 3, 7, 7)},
             {"kernel_size": 3, "stride": 2, "padding": 1})
    add_case("avg_pool2d_k2", "torch.nn.functional.avg_pool2d",
             lambda t, **p: F.avg_pool2d(t["x"], **p), {"x": randn(2, 3, 6, 6)},
             {"kernel_size": 2, "stride": 2, "padding": 0})
    add_case("adaptive_avg_pool2d_7to1", "torch.nn.functional.adaptive_avg_pool2d",
             lambda t, **p: F.adaptive_avg_pool2d(t["x"], **p), {"x": randn(2, 3, 7, 7)},
             {"output_size": 1})
    add_case("adaptive_avg_pool2d_7to3", "torch.nn.functional.adaptive_avg_pool2d",
             lambda t, **p: F.adaptive_avg_pool2d(t["x"], **p), {"x": randn(2, 3, 7, 7)},
             {"output_size": 3})


def activation_cases():
    def away_from(x, points, eps=1e-2):
        # nudge values off non-differentiable points so grads are unambiguous
        for p in points:
            close = (x - p).abs() < eps
            x = torch.where(close, x + 2 * eps, x)
        return x

    add_case("relu", "torch.nn.functional.relu", lambda t: F.relu(t["x"]),
             {"x": away_from(randn(4, 6, scale=2.0), [0.0])})
    add_case("relu6", "torch.nn.functional.hardtanh",
             lambda t, **p: F.hardtanh(t["x"], **p),
             {"x": away_from(randn(4, 6, scale=4.0) + 2.0, [0.0, 6.0])},
             {"min_val": 0.0, "max_val": 6.0})
    add_case("sigmoid", "torch.sigmoid", lambda t: torch.sigmoid(t["x"]),
             {"x": randn(4, 6, scale=2.0)})
    add_case("tanh", "torch.tanh", lambda t: torch.tanh(t["x"]),
             {"x": randn(4, 6, scale=2.0)})
    add_case("gelu", "torch.nn.functional.gelu", lambda t, **p: F.gelu(t["x"], **p),
             {"x": randn(4, 6, scale=2.0)}, {"approximate": "none"})
    add_case("softmax_dim1", "torch.softmax", lambda t, **p: torch.softmax(t["x"], **p),
             {"x": randn(4, 6, scale=2.0)}, {"dim": 1})
    add_case("softmax_dim1_3d", "torch.softmax", lambda t, **p: torch.softmax(t["x"], **p),
             {"x": randn(2, 5, 3, scale=2.0)}, {"dim": 1})
    add_case("log_softmax_dim1", "torch.log_softmax",
             lambda t, **p: torch.log_softmax(t["x"], **p),
             {"x": randn(4, 6, scale=2.0)}, {"dim": 1})


def loss_cases():
    def ce(t, **p):
        return F.cross_entropy(t["input"], t["target"], **p)

    for name, ls in (("cross_entropy_mean", 0.0), ("cross_entropy_label_smoothing", 0.1)):
        add_case(name, "torch.nn.functional.cross_entropy", ce,
                 {"input": randn(6, 5, scale=2.0),
                  "target": torch.randint(0, 5, (6,), dtype=torch.int64)},
                 {"reduction": "mean", "label_smoothing": ls})


def linear_cases():
    add_case("linear", "torch.nn.functional.linear",
             lambda t: F.linear(t["x"], t["weight"], t["bias"]),
             {"x": randn(4, 6), "weight": randn(3, 6, scale=0.5), "bias": randn(3, scale=0.5)})
    add_case("linear_nobias", "torch.nn.functional.linear",
             lambda t: F.linear(t["x"], t["weight"]),
             {"x": randn(4, 6), "weight": randn(3, 6, scale=0.5)})
    add_case("matmul_2d", "torch.matmul", lambda t: torch.matmul(t["a"], t["b"]),
             {"a": randn(3, 4), "b": randn(4, 5)})
    add_case("matmul_3d_batched", "torch.matmul", lambda t: torch.matmul(t["a"], t["b"]),
             {"a": randn(2, 3, 4), "b": randn(2, 4, 5)})


def lstm_cases():
    N, I, H = 3, 4, 5

    def cell(t):
        h, c = torch.lstm_cell(t["x"], (t["h0"], t["c0"]), t["w_ih"], t["w_hh"],
                               t["b_ih"], t["b_hh"])
        return {"h": h, "c": c}

    inputs = {
        "x": randn(N, I), "h0": randn(N, H, scale=0.5), "c0": randn(N, H, scale=0.5),
        "w_ih": randn(4 * H, I, scale=0.4), "w_hh": randn(4 * H, H, scale=0.4),
        "b_ih": randn(4 * H, scale=0.2), "b_hh": randn(4 * H, scale=0.2),
    }
    # cross-check against the textbook formula (gate order i, f, g, o)
    gates = inputs["x"] @ inputs["w_ih"].T + inputs["b_ih"] + inputs["h0"] @ inputs["w_hh"].T + inputs["b_hh"]
    i, f, g, o = gates.chunk(4, 1)
    c1 = torch.sigmoid(f) * inputs["c0"] + torch.sigmoid(i) * torch.tanh(g)
    h1 = torch.sigmoid(o) * torch.tanh(c1)
    ref = cell(inputs)
    assert torch.allclose(ref["h"], h1, atol=1e-6) and torch.allclose(ref["c"], c1, atol=1e-6)
    add_case("lstm_cell", "torch.lstm_cell", cell, inputs)


def reduction_cases():
    x = lambda: randn(3, 4, 5)  # noqa: E731
    add_case("sum_dim1_keepdim", "torch.sum", lambda t, **p: torch.sum(t["x"], **p),
             {"x": x()}, {"dim": 1, "keepdim": True})
    add_case("sum_dim2", "torch.sum", lambda t, **p: torch.sum(t["x"], **p),
             {"x": x()}, {"dim": 2, "keepdim": False})
    add_case("sum_all", "torch.sum", lambda t: torch.sum(t["x"]), {"x": x()})
    add_case("mean_dim1_keepdim", "torch.mean", lambda t, **p: torch.mean(t["x"], **p),
             {"x": x()}, {"dim": 1, "keepdim": True})
    add_case("mean_all", "torch.mean", lambda t: torch.mean(t["x"]), {"x": x()})
    add_case("var_dim1_unbiased", "torch.var", lambda t, **p: torch.var(t["x"], **p),
             {"x": x()}, {"dim": 1, "unbiased": True, "keepdim": False})
    add_case("var_all_unbiased", "torch.var", lambda t, **p: torch.var(t["x"], **p),
             {"x": x()}, {"unbiased": True})

    def mx(t, **p):
        r = torch.max(t["x"], **p)
        return {"values": r.values, "indices": r.indices}

    add_case("max_dim1", "torch.max", mx, {"x": x()}, {"dim": 1, "keepdim": False})
    add_case("argmax_dim1", "torch.argmax", lambda t, **p: torch.argmax(t["x"], **p),
             {"x": x()}, {"dim": 1, "keepdim": False}, grad=[])


def elementwise_cases():
    add_case("add_broadcast", "torch.add", lambda t: torch.add(t["a"], t["b"]),
             {"a": randn(3, 4), "b": randn(4)})
    add_case("sub_broadcast", "torch.sub", lambda t: torch.sub(t["a"], t["b"]),
             {"a": randn(2, 3, 4), "b": randn(3, 1)})
    add_case("mul_broadcast", "torch.mul", lambda t: torch.mul(t["a"], t["b"]),
             {"a": randn(3, 1, 4), "b": randn(1, 5, 4)})
    add_case("div_broadcast", "torch.div", lambda t: torch.div(t["a"], t["b"]),
             {"a": randn(3, 4), "b": rand_pos(3, 1) * torch.tensor([[1.0], [-1.0], [1.0]])})
    add_case("exp", "torch.exp", lambda t: torch.exp(t["x"]), {"x": randn(3, 4)})
    add_case("log", "torch.log", lambda t: torch.log(t["x"]), {"x": rand_pos(3, 4, lo=0.1, hi=3.0)})
    add_case("sqrt", "torch.sqrt", lambda t: torch.sqrt(t["x"]), {"x": rand_pos(3, 4, lo=0.1, hi=3.0)})
    add_case("pow_2.5", "torch.pow", lambda t, **p: torch.pow(t["x"], **p),
             {"x": rand_pos(3, 4, lo=0.1, hi=3.0)}, {"exponent": 2.5})
    xc = randn(3, 4)
    xc = torch.where((xc.abs() - 0.5).abs() < 1e-2, xc * 1.1, xc)
    add_case("clamp", "torch.clamp", lambda t, **p: torch.clamp(t["x"], **p),
             {"x": xc}, {"min": -0.5, "max": 0.5})


def svd_cases():
    add_case("svdvals_6x4", "torch.linalg.svdvals", lambda t: torch.linalg.svdvals(t["A"]),
             {"A": randn(6, 4)})


def optimizer_cases():
    n = 6
    p0 = randn(n)
    gs = [randn(n) for _ in range(3)]

    def run(name, op, make_opt, params):
        p = torch.nn.Parameter(p0.clone())
        opt = make_opt([p], **params)
        out = {}
        for k, g in enumerate(gs, 1):
            p.grad = g.clone()
            opt.step()
            out["p%d" % k] = p.detach().clone()
        inputs = {"p0": p0, "g1": gs[0], "g2": gs[1], "g3": gs[2]}
        p_params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}
        CASES.append({"name": name, "op": op, "inputs": {k: enc(v) for k, v in inputs.items()},
                      "params": p_params, "output": {k: enc(v) for k, v in out.items()},
                      "grads": {}})

    run("sgd", "torch.optim.SGD", torch.optim.SGD,
        {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "nesterov": False, "weight_decay": 0.01})
    run("sgd_nesterov", "torch.optim.SGD", torch.optim.SGD,
        {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "nesterov": True, "weight_decay": 0.01})
    run("adamw", "torch.optim.AdamW", torch.optim.AdamW,
        {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1, "amsgrad": False})


def schedule_cases():
    def run(name, op, make_sched, params, epochs, base_lr=0.1):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=base_lr)
        sched = make_sched(opt, **params)
        lrs = []
        for _ in range(epochs):
            lrs.append(opt.param_groups[0]["lr"])  # lr used during this epoch
            opt.step()
            sched.step()
        CASES.append({"name": name, "op": op, "inputs": {},
                      "params": dict(params, base_lr=base_lr, epochs=epochs),
                      "output": {"lrs": enc(torch.tensor(lrs, dtype=torch.float64))},
                      "grads": {}})

    run("cosine_annealing_lr", "torch.optim.lr_scheduler.CosineAnnealingLR",
        torch.optim.lr_scheduler.CosineAnnealingLR, {"T_max": 10, "eta_min": 0.001}, 12)
    run("step_lr", "torch.optim.lr_scheduler.StepLR",
        torch.optim.lr_scheduler.StepLR, {"step_size": 3, "gamma": 0.1}, 10)


def torch_package_version():
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "python3-torch"],
                           capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            return None
        return r.stdout.strip() or None
    except Exception:
        return None


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    conv_cases()
    batch_norm_cases()
    pool_cases()
    activation_cases()
    loss_cases()
    linear_cases()
    lstm_cases()
    reduction_cases()
    elementwise_cases()
    svd_cases()
    optimizer_cases()
    schedule_cases()
    doc = {
        "format": 1,
        "torch": torch.__version__,
        "torch_package": torch_package_version(),
        "generator": "test/reference/make_reference.py",
        "cases": CASES,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    with open(out_path, "w") as fh:
        fh.write(text + "\n")
    print("wrote %s: %d cases, %d bytes" % (out_path, len(CASES), len(text) + 1), file=sys.stderr)


if __name__ == "__main__":
    main()
