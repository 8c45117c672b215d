#!/usr/bin/python3
"""numpy reference for src/analysis/similarity.ts (linear CKA, debiased linear CKA, SVCCA).

Usage: /usr/bin/python3 test/reference/similarity.py < cases.json > results.json
    cases.json: {"cases": [{"n": N, "x": [...], "y": [...], "keep": 0.99}, ...]}, x and y row-major
    [N, p] and [N, q] (flat or nested lists)
    results.json: {"results": [{"cka", "ckaDebiased", "svcca", "dimsX", "dimsY"}, ...]}
    A case with "batch": B also gets "mbCka" and "mbCkaDebiased": minibatch CKA (Nguyen et al.
    2021) over consecutive batches of B rows, HSIC averaged over batches, then normalised.

Written independently of the TypeScript: the debiased CKA uses Kornblith et al.'s U-centring of
the Gram matrix (their notebook's center_gram(unbiased=True)), where the TypeScript uses Song et
al.'s closed-form unbiased HSIC; the CCA step whitens covariance matrices (Sxx^-1/2 Sxy Syy^-1/2)
where the TypeScript takes the singular values of two orthonormal bases. Needs numpy only.
"""
import json
import sys

import numpy as np


def center_gram(g, unbiased):
    g = g.copy()
    n = g.shape[0]
    if unbiased:
        np.fill_diagonal(g, 0)
        means = np.sum(g, 0) / (n - 2)
        means -= np.sum(means) / (2 * (n - 1))
        g -= means[:, None]
        g -= means[None, :]
        np.fill_diagonal(g, 0)
    else:
        h = np.eye(n) - np.ones((n, n)) / n
        g = h @ g @ h
    return g


def cka(x, y, unbiased):
    gx = center_gram(x @ x.T, unbiased)
    gy = center_gram(y @ y.T, unbiased)
    return float(gx.ravel() @ gy.ravel() / (np.linalg.norm(gx) * np.linalg.norm(gy)))


def minibatch_cka(x, y, b):
    sums = {False: np.zeros(3), True: np.zeros(3)}
    for i in range(0, x.shape[0], b):
        k, l = x[i:i + b] @ x[i:i + b].T, y[i:i + b] @ y[i:i + b].T
        n = k.shape[0]
        for unbiased in (False, True):
            # U-centred dot products are Song et al.'s unbiased HSIC times n(n-3).
            scale = n * (n - 3) if unbiased else (n - 1) ** 2
            gk, gl = center_gram(k, unbiased), center_gram(l, unbiased)
            sums[unbiased] += np.array([gk.ravel() @ gl.ravel(), gk.ravel() @ gk.ravel(), gl.ravel() @ gl.ravel()]) / scale
    return [float(s[0] / np.sqrt(s[1] * s[2])) for s in (sums[False], sums[True])]


def svd_reduce(x, keep):
    x = x - x.mean(0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    energy = s ** 2
    k = 0
    acc = 0.0
    while k < len(s) and energy[k] > energy[0] * 1e-20 and acc < keep * energy.sum():
        acc += energy[k]
        k += 1
    return x @ vt[:max(k, 1)].T


def inv_sqrt(c):
    w, v = np.linalg.eigh(c)
    return v @ np.diag(w ** -0.5) @ v.T


def svcca(x, y, keep):
    a, b = svd_reduce(x, keep), svd_reduce(y, keep)
    sab = a.T @ b
    m = inv_sqrt(a.T @ a) @ sab @ inv_sqrt(b.T @ b)
    rho = np.clip(np.linalg.svd(m, compute_uv=False), 0, 1)
    return float(rho.mean()), a.shape[1], b.shape[1]


def main():
    cases = json.load(sys.stdin)["cases"]
    out = []
    for c in cases:
        x = np.array(c["x"], dtype=np.float64).reshape(c["n"], -1)
        y = np.array(c["y"], dtype=np.float64).reshape(c["n"], -1)
        s, dx, dy = svcca(x, y, c.get("keep", 0.99))
        r = {"cka": cka(x, y, False), "ckaDebiased": cka(x, y, True), "svcca": s, "dimsX": dx, "dimsY": dy}
        if "batch" in c:
            r["mbCka"], r["mbCkaDebiased"] = minibatch_cka(x, y, c["batch"])
        out.append(r)
    json.dump({"results": out}, sys.stdout)


if __name__ == "__main__":
    main()
