/**
 * AdaFilter trained the way it is evaluated: gate modes, the warm start and the gate's own phase,
 * a pretrained S path, and precise BN (recalibrated statistics checked against a hand computation).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/engine/tensor';
import { manualSeed, randn, randint } from '../../src/engine/random';
import { noGrad } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import { setNumThreads } from '../../src/engine/runtime';
import { SGD } from '../../src/optim/sgd';
import { Module } from '../../src/nn/module';
import { Conv2d } from '../../src/nn/conv';
import { BatchNorm2d } from '../../src/nn/batchnorm';
import { batchNorm, conv2d, relu } from '../../src/nn/functional';
import { applyMethod, AdaFilterModel } from '../../src/methods';
import { RecurrentGate } from '../../src/methods/adafilter';
import { recalibrateBn } from '../../src/train/precise-bn';
import type { Batch } from '../../src/data/loader';
import { InputError } from '../../src/errors';
import { fakePretrained, maxAbsDiff, perturb, snapshot, step, trainPass } from './helpers';

setNumThreads(2);

const ada = (o: Record<string, unknown> = {}, seed = 1, name = 'adafilter') =>
  applyMethod(name, fakePretrained(seed), 5, o) as AdaFilterModel;

/** Records every training gate the model's gate network produces in the next passes. */
function recordGates(m: AdaFilterModel): { seen: number[][]; restore: () => void } {
  const seen: number[][] = [];
  const orig = m.gate.start.bind(m.gate);
  m.gate.start = (batch: number) => {
    const pass = orig(batch);
    return { gate: (l: number, x: Tensor, tr: boolean) => { const r = pass.gate(l, x, tr); seen.push(r.g.toArray() as number[]); return r; } };
  };
  return { seen, restore: () => { m.gate.start = orig; } };
}

test("gate mode 'st': two training passes over one batch give identical 0/1 gates and outputs; 'gumbel' does not", () => {
  manualSeed(20);
  const x = randn([4, 3, 16, 16]), y = randint(0, 5, [4]);
  const passes = (mode: string) => {
    const m = ada({ gateMode: mode });
    perturb(m);
    const rec = recordGates(m);
    const a = trainPass(m, x, y, 1), gatesA = rec.seen.splice(0);
    const b = trainPass(m, x, y, 2), gatesB = rec.seen.splice(0);
    rec.restore();
    const out = { diff: maxAbsDiff(a, b), gatesA, gatesB };
    m.dispose();
    return out;
  };
  const st = passes('st');
  assert.equal(st.diff, 0, 'same outputs');
  assert.deepEqual(st.gatesA, st.gatesB, 'same gates');
  const all = st.gatesA.flat();
  assert.ok(all.every((v) => v === 0 || v === 1), 'gates are exactly 0/1');
  assert.ok(all.includes(0) && all.includes(1));
  const gb = passes('gumbel');
  assert.notDeepEqual(gb.gatesA, gb.gatesB, 'Gumbel noise differs between seeds');
});

test("'st' gradient of the gate network equals finite differences of its surrogate σ(z/τ), in float64", () => {
  // Loss L = Σ W ⊙ g over both layers' gates. The straight-through gradient of a gate parameter θ is
  // Σ W ⊙ dσ(z(θ)/τ)/dθ: the exact derivative of S(θ) = Σ W ⊙ σ(z(θ)/τ), checked by central differences.
  manualSeed(21);
  const tau = 0.7;
  const layers = [{ inChannels: 3, outChannels: 4 }, { inChannels: 4, outChannels: 5 }];
  const gate = new RecurrentGate(layers, { inputSize: 6, hiddenSize: 7, tau, initFraction: 0.5, detachInput: false }).to('float64');
  gate.noiseScale = 0;
  const xs = [randn([3, 3, 4, 4], { dtype: 'float64' }), randn([3, 4, 2, 2], { dtype: 'float64' })];
  const ws = [randn([3, 4], { dtype: 'float64' }), randn([3, 5], { dtype: 'float64' })];
  const run = (soft: boolean): Tensor => {
    const pass = gate.start(3);
    let total: Tensor | null = null;
    for (let l = 0; l < 2; l++) {
      const g = soft ? pass.logits(l, xs[l], true).div(tau).sigmoid() : pass.gate(l, xs[l], true).g;
      const s = g.mul(ws[l]).sum();
      total = total ? total.add(s) : s;
    }
    return total!;
  };
  tidy(() => run(false).backward());
  const h = 1e-6;
  let checked = 0;
  for (const [name, p] of gate.namedParameters()) {
    const n = p.numel;
    const grad = p.grad!.toArray() as number[];
    for (const i of [0, Math.floor(n / 2), n - 1]) {
      const flat = p.view(-1);
      const orig = flat.select(0, i).item();
      const at = (v: number) => { noGrad(() => flat.select(0, i).fill_(v)); return noGrad(() => tidy(() => run(true).item())); };
      const fd = (at(orig + h) - at(orig - h)) / (2 * h);
      at(orig);
      assert.ok(Math.abs(fd - grad[i]) <= 1e-7 + 1e-6 * Math.abs(fd), `${name}[${i}]: autograd ${grad[i]}, finite differences ${fd}`);
      checked++;
    }
  }
  assert.ok(checked >= 24);
  gate.dispose();
});

test("'gumbel-anneal' at its last step equals 'st'; at its first it does not", () => {
  manualSeed(22);
  const x = randn([4, 3, 16, 16]), y = randint(0, 5, [4]);
  const pass = (o: Record<string, unknown>, at: [number, number] | null) => {
    const m = ada(o);
    perturb(m);
    if (at) m.atStep(...at);
    const logits = trainPass(m, x, y, 5);
    const grads = m.gate.parameters().map((p) => p.grad!.toArray());
    m.dispose();
    return { logits, grads };
  };
  const st = pass({ gateMode: 'st' }, null);
  const last = pass({ gateMode: 'gumbel-anneal', annealEnd: 1, warmup: 0 }, [99, 100]);
  const first = pass({ gateMode: 'gumbel-anneal', annealEnd: 1, warmup: 0 }, [0, 100]);
  assert.equal(maxAbsDiff(st.logits, last.logits), 0);
  assert.deepEqual(st.grads, last.grads, 'same gate gradients');
  assert.ok(maxAbsDiff(st.logits, first.logits) > 0, 'noise at the first step');
});

/** The finetune parameter name of an AdaFilter backbone entry (F path), or null for S-only entries. */
function finetuneName(k: string): string | null {
  let mt = /^(.*)\.conv(\d)\.weight_(f|s)$/.exec(k);
  if (mt) return mt[3] === 'f' ? `${mt[1]}.conv${mt[2]}.weight` : null;
  mt = /^(.*)\.conv(\d)\.norm\.(bn_f|bn_s)\.(.*)$/.exec(k);
  if (mt) return mt[3] === 'bn_f' ? `${mt[1]}.bn${mt[2]}.${mt[4]}` : null;
  return k;
}

test('warm start: the gate stays bit-identical and F follows finetune exactly; then the gate trains', () => {
  manualSeed(23);
  const x = randn([6, 3, 16, 16]), y = randint(0, 5, [6]);
  const ft = applyMethod('finetune', fakePretrained(3), 5);
  const af = applyMethod('adafilter', fakePretrained(3), 5, { warmup: 0.5 }) as AdaFilterModel;
  const lrs = { lr: 0.05, gateLr: 0.5 };
  const optFt = new SGD(ft.paramGroups(lrs), { lr: 0.05, momentum: 0.9 });
  const optAf = new SGD(af.paramGroups(lrs), { lr: 0.05, momentum: 0.9 });
  const gate0 = snapshot(af.gate);
  const total = 8;
  ft.train(); af.train();
  for (let k = 0; k < 4; k++) {
    ft.atStep(k, total); af.atStep(k, total);
    step(ft, optFt, x, y);
    step(af, optAf, x, y);
  }
  assert.deepEqual(snapshot(af.gate), gate0, 'gate parameters unchanged during the warm start');
  const ref = new Map([...ft.backbone.stateDict()].map(([k, t]) => [k, t.toArray()]));
  let compared = 0;
  for (const [k, t] of af.backbone.stateDict()) {
    const name = finetuneName(k);
    if (name === null) continue;
    assert.ok(ref.has(name), `finetune has ${name}`);
    assert.deepEqual(t.toArray(), ref.get(name), `${k} equals finetune's ${name}`);
    compared++;
  }
  assert.ok(compared > 100);
  af.atStep(4, total);
  step(af, optAf, x, y);
  assert.notDeepEqual(snapshot(af.gate), gate0, 'after the warm start the gate trains');
  for (const m of [ft, af]) m.dispose();
  optFt.dispose(); optAf.dispose();
});

test("the gate's own last phase trains the gate network alone", () => {
  manualSeed(24);
  const x = randn([4, 3, 16, 16]), y = randint(0, 5, [4]);
  const m = ada({ gateMode: 'st', gatePhase: 0.25 });
  perturb(m);
  const opt = new SGD(m.paramGroups({ lr: 0.05, gateLr: 0.5 }), { lr: 0.05, momentum: 0.9 });
  m.train();
  m.atStep(2, 8);
  step(m, opt, x, y); // joint: momentum buffers everywhere
  const before = snapshot(m.backbone), gateBefore = snapshot(m.gate);
  m.atStep(6, 8);
  step(m, opt, x, y);
  const after = snapshot(m.backbone);
  for (const [k, v] of before) {
    if (/running_|num_batches/.test(k)) continue; // BN statistics still follow the batches
    assert.deepEqual(after.get(k), v, `${k} frozen in the gate phase`);
  }
  assert.notDeepEqual(snapshot(m.gate), gateBefore, 'the gate trains');
  m.atStep(2, 8); // a resumed run at an earlier position is in the joint phase again
  assert.ok(m.backbone.parameters().some((p) => p.requiresGrad));
  m.dispose(); opt.dispose();
});

test('pretrainedS: BN_S keeps the pretrained statistics and affine parameters through training and recalibration', async () => {
  manualSeed(25);
  const x = randn([4, 3, 16, 16]), y = randint(0, 5, [4]);
  const m = ada({ pretrainedS: true, gateMode: 'st' });
  perturb(m);
  const bnS = () => new Map([...m.stateDict()].filter(([k]) => k.includes('.bn_s.')).map(([k, t]) => [k, t.toArray()]));
  const s0 = bnS();
  assert.ok(s0.size > 0);
  const opt = new SGD(m.paramGroups({ lr: 0.05, gateLr: 0.5 }), { lr: 0.05, momentum: 0.9 });
  m.train();
  step(m, opt, x, y);
  await recalibrateBn(m, batchesOf(x, 2));
  assert.deepEqual(bnS(), s0);
  m.dispose(); opt.dispose();
});

function batchesOf(x: Tensor, size: number): Batch[] {
  const out: Batch[] = [];
  const n = x.size(0);
  for (let i = 0; i < n; i += size) {
    const t = x.narrow(0, i, Math.min(size, n - i));
    out.push({ x: t.contiguous().toFloat32Array(), y: new Int32Array(t.size(0)), shape: t.shape as [number, number, number, number] });
  }
  return out;
}

/** Mean over batches of the per-channel batch mean and unbiased batch variance of y (N×C×H×W each). */
function averagedStats(ys: Tensor[]): { mean: number[]; var: number[] } {
  return noGrad(() => tidy(() => {
    let m: Tensor | null = null, v: Tensor | null = null;
    for (const y of ys) {
      const bm = y.mean([0, 2, 3]);
      const n = y.numel / y.size(1);
      const bv = y.sub(bm.view(1, -1, 1, 1)).square().sum([0, 2, 3]).div(n - 1);
      m = m ? m.add(bm) : bm; v = v ? v.add(bv) : bv;
    }
    return { mean: m!.div(ys.length).toArray() as number[], var: v!.div(ys.length).toArray() as number[] };
  }));
}

function assertClose(a: number[], b: number[], what: string, tol = 1e-5): void {
  assert.equal(a.length, b.length);
  const d = Math.max(...a.map((v, i) => Math.abs(v - b[i]) / Math.max(1, Math.abs(b[i]))));
  assert.ok(d < tol, `${what}: max relative difference ${d}`);
}

class TwoLayer extends Module {
  conv1 = new Conv2d(3, 5, 3, { padding: 1 });
  bn1 = new BatchNorm2d(5);
  conv2 = new Conv2d(5, 4, 3, { padding: 1 });
  bn2 = new BatchNorm2d(4);
  unused = new BatchNorm2d(4);
  forward(x: Tensor): Tensor {
    return this.bn2.forward(this.conv2.forward(relu(this.bn1.forward(this.conv1.forward(x)))));
  }
}

test('precise BN: running statistics become the mean over batches of the batch statistics (hand-computed)', async () => {
  manualSeed(26);
  const net = new TwoLayer();
  noGrad(() => { net.unused.running_mean.fill_(0.3); net.bn1.running_mean.fill_(9); });
  const x = randn([10, 3, 6, 6]).mul(2).add(0.5);
  const batches = batchesOf(x, 4); // 4, 4, 2: unequal batches are averaged per batch, as torch's update_bn
  const xs = [x.narrow(0, 0, 4), x.narrow(0, 4, 4), x.narrow(0, 8, 2)];
  // The hand computation: functional ops on each batch, BN with that batch's statistics.
  const y1 = xs.map((xb) => conv2d(xb, net.conv1.weight, net.conv1.bias, { padding: 1 }));
  const y2 = y1.map((y) => noGrad(() => conv2d(relu(batchNorm(y, null, null, net.bn1.weight, net.bn1.bias, { training: true, momentum: 0, eps: net.bn1.eps })),
    net.conv2.weight, net.conv2.bias, { padding: 1 })));
  const e1 = averagedStats(y1), e2 = averagedStats(y2);
  const tracked = net.bn1.num_batches_tracked.item();
  net.eval();
  const seen = await recalibrateBn(net, batches);
  assert.equal(seen, 10);
  assertClose(net.bn1.running_mean.toArray() as number[], e1.mean, 'bn1 mean');
  assertClose(net.bn1.running_var.toArray() as number[], e1.var, 'bn1 var');
  assertClose(net.bn2.running_mean.toArray() as number[], e2.mean, 'bn2 mean');
  assertClose(net.bn2.running_var.toArray() as number[], e2.var, 'bn2 var');
  assert.deepEqual(net.unused.running_mean.toArray(), [0.3, 0.3, 0.3, 0.3].map((v) => Math.fround(v)), 'a BN no batch reached keeps its statistics');
  assert.equal(net.bn1.num_batches_tracked.item(), tracked);
  assert.equal(net.bn1.momentum, 0.1, 'momentum restored');
  assert.equal(net.training, false, 'mode restored');
  net.dispose();
});

test('precise BN on AdaFilter: BN_F and BN_S of the first gated layer match the hand computation; the pass uses evaluation gates', async () => {
  manualSeed(27);
  const x = randn([8, 3, 16, 16]);
  const batches = batchesOf(x, 4);
  const xs = [x.narrow(0, 0, 4), x.narrow(0, 4, 4)];
  const m = ada({ gateMode: 'gumbel' });
  perturb(m);
  const bb = m.backbone as unknown as { conv1: Conv2d; bn1: BatchNorm2d };
  const first = m.gated[0];
  const h = xs.map((xb) => noGrad(() => relu(batchNorm(conv2d(xb, bb.conv1.weight, null, { padding: 1 }), null, null, bb.bn1.weight, bb.bn1.bias, { training: true, momentum: 0, eps: bb.bn1.eps }))));
  const eF = averagedStats(h.map((t) => noGrad(() => conv2d(t, first.weight_f, null, { padding: 1 }))));
  const eS = averagedStats(h.map((t) => noGrad(() => conv2d(t, first.weight_s, null, { padding: 1 }))));
  const stats = () => new Map([...m.stateDict()].filter(([k]) => /running_(mean|var)$/.test(k)).map(([k, t]) => [k, t.toArray()]));
  manualSeed(1);
  await recalibrateBn(m, batches);
  const a = stats();
  assertClose(first.norm.bn_f!.running_mean.toArray() as number[], eF.mean, 'BN_F mean');
  assertClose(first.norm.bn_f!.running_var.toArray() as number[], eF.var, 'BN_F var');
  assertClose(first.norm.bn_s!.running_mean.toArray() as number[], eS.mean, 'BN_S mean');
  assertClose(first.norm.bn_s!.running_var.toArray() as number[], eS.var, 'BN_S var');
  manualSeed(2);
  await recalibrateBn(m, batches);
  assert.deepEqual(stats(), a, 'evaluation gates: another seed gives the same statistics');
  m.dispose();
});

test('bad AdaFilter options are refused with one clear message', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ gateMode: 'coin' }, /gateMode must be one of st, gumbel, gumbel-anneal, got "coin"/],
    [{ warmup: -0.1 }, /warmup must be a fraction of the run in \[0, 0\.95\], got -0\.1/],
    [{ gatePhase: 2 }, /gatePhase must be/],
    [{ warmup: 0.6, gatePhase: 0.5 }, /warmup \+ gatePhase/],
    [{ annealEnd: 0 }, /annealEnd must be in \(0, 1\]/],
  ];
  for (const [o, re] of cases) {
    assert.throws(() => ada(o), (e: unknown) => e instanceof InputError && re.test((e as Error).message), JSON.stringify(o));
  }
});
