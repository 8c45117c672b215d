import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/engine/tensor';
import { manualSeed, randn, randint } from '../../src/engine/random';
import { noGrad } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import { setNumThreads } from '../../src/engine/runtime';
import { ResNet } from '../../src/models/resnet';
import { SGD } from '../../src/optim/sgd';
import { Module } from '../../src/nn/module';
import { applyMethod, AdaFilterModel } from '../../src/methods';
import { GatedConv, gumbelSigmoidST } from '../../src/methods/adafilter';
import { fakePretrained, maxAbsDiff, perturb, snapshot, step, trainPass } from './helpers';

setNumThreads(2);

const ada = (name = 'adafilter', o: Record<string, unknown> = {}, seed = 1) =>
  applyMethod(name, fakePretrained(seed), 5, o) as AdaFilterModel;



/**
 * A plain resnet20 holding, at every gated layer, the weights and BN of one path of the AdaFilter
 * model ('f' or 's'), and the AdaFilter model's stem, shortcuts and head.
 */
function reference(m: AdaFilterModel, path: 'f' | 's', bnName = `bn_${path}`): ResNet {
  const ref = new ResNet({ blocks: [3, 3, 3], widths: [16, 32, 64], stem: 'cifar', numClasses: 5 });
  const sd = new Map<string, Tensor>();
  for (const [k, t] of m.backbone.stateDict()) {
    let mt = /^(.*)\.conv(\d)\.weight_(f|s)$/.exec(k);
    if (mt) { if (mt[3] === path) sd.set(`${mt[1]}.conv${mt[2]}.weight`, t); continue; }
    mt = /^(.*)\.conv(\d)\.norm\.(bn_f|bn_s|bn)\.(.*)$/.exec(k);
    if (mt) { if (mt[3] === bnName) sd.set(`${mt[1]}.bn${mt[2]}.${mt[4]}`, t); continue; }
    sd.set(k, t);
  }
  ref.loadStateDict(sd);
  return ref.eval();
}

function compareForced(name: string, bnF: string, bnS: string) {
  const m = ada(name);
  perturb(m);
  m.eval();
  manualSeed(11);
  const x = randn([4, 3, 16, 16]);
  const run = (mod: Module) => noGrad(() => mod.forward(x));
  const refF = reference(m, 'f', bnF), refS = reference(m, 's', bnS);
  m.forceGates(1);
  const yF = run(m);
  m.forceGates(0);
  const yS = run(m);
  m.forceGates(null);
  assert.equal(maxAbsDiff(yF, run(refF)), 0, 'gates 1 = fine-tuned network');
  assert.equal(maxAbsDiff(yS, run(refS)), 0, 'gates 0 = pretrained network');
  assert.ok(maxAbsDiff(yF, yS) > 1e-3, 'the two paths differ');
  m.dispose(); refF.dispose(); refS.dispose();
}

test('adafilter: every gate forced to 1 equals the fine-tuned network, to 0 the pretrained one', () => {
  compareForced('adafilter', 'bn_f', 'bn_s');
});

test('adafilter-nogbn: the same with one BN after mixing', () => {
  compareForced('adafilter-nogbn', 'bn', 'bn');
});

test('forced gates without path skipping still give exactly one path (mixing is exact at 0/1)', () => {
  const m = ada('adafilter', { skipPaths: 'never' });
  perturb(m);
  m.eval();
  manualSeed(12);
  const x = randn([2, 3, 16, 16]);
  const ref = reference(m, 'f');
  m.forceGates(1);
  const y = noGrad(() => m.forward(x));
  assert.equal(maxAbsDiff(y, noGrad(() => ref.forward(x))), 0);
  m.dispose(); ref.dispose();
});

test('adafilter gates both 3×3 convs of every block, not stem or shortcuts, in layer order', () => {
  const m = ada();
  assert.equal(m.gated.length, 18);
  assert.deepEqual(m.gatedNames.slice(0, 3), ['layer1.0.conv1', 'layer1.0.conv2', 'layer1.1.conv1']);
  assert.ok(!m.gatedNames.some((n) => n === 'conv1' || n.includes('downsample')));
  const calls = tidy(() => m.run(randn([2, 3, 16, 16])).gates.map((r) => r.layer));
  assert.deepEqual(calls, Array.from({ length: 18 }, (_, i) => i), 'the pass returns each gated layer\'s gates, in call order');
  const all = ada('adafilter', { gateLayers: 'all' });
  assert.equal(all.gated.length, 21);
  const last = ada('adafilter', { gateLayers: 'last-4' });
  assert.deepEqual(last.gatedNames, ['layer3.1.conv1', 'layer3.1.conv2', 'layer3.2.conv1', 'layer3.2.conv2']);
  const c = m.parameterCounts();
  assert.ok(c.frozen > 0 && c.trainable > c.frozen);
  m.dispose(); all.dispose(); last.dispose();
});

test('adafilter: S weights bit-identical after training steps; gradients reach exactly the trained parameters', () => {
  const m = ada();
  manualSeed(13);
  const x = randn([4, 3, 16, 16]), y = randint(0, 5, [4]);
  const trained = new Set(m.paramGroups({ lr: 0.1, gateLr: 0.01 }).flatMap((g) => g.params));
  const named = m.namedParameters();
  const frozenNames = named.filter(([, p]) => !trained.has(p)).map(([k]) => k);
  assert.equal(frozenNames.length, 18);
  assert.ok(frozenNames.every((k) => k.endsWith('.weight_s')));
  assert.ok(named.filter(([k]) => k.startsWith('gate.')).every(([, p]) => trained.has(p)));
  const before = snapshot(m);
  m.train();
  const opt = new SGD(m.paramGroups({ lr: 0.1, gateLr: 0.01 }), { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
  for (let i = 0; i < 3; i++) step(m, opt, x, y);
  const after = snapshot(m);
  for (const k of frozenNames) assert.deepEqual(after.get(k), before.get(k), k);
  assert.notDeepEqual(after.get('backbone.layer1.0.conv1.weight_f'), before.get('backbone.layer1.0.conv1.weight_f'));
  assert.notDeepEqual(after.get('gate.lstm.weight_hh'), before.get('gate.lstm.weight_hh'));
  // one backward: gradient on every trained parameter, none on a frozen one
  for (const p of m.parameters()) p.grad = null;
  tidy(() => m.loss(m.run(x), y).backward());
  for (const [k, p] of named) {
    if (trained.has(p)) assert.notEqual(p.grad, null, `${k} should have a gradient`);
    else assert.equal(p.grad, null, `${k} should have none`);
  }
  // gate biases and BN parameters are not decayed
  const groups = m.paramGroups({ lr: 0.1 });
  const gnd = groups.find((g) => g.name === 'gate_no_decay')!;
  assert.equal(gnd.weightDecay, 0);
  assert.equal(gnd.params.length, 2 + 18 + 18);
  m.dispose();
});

test('frozenBnAffine freezes BN_S affine parameters', () => {
  const m = ada('adafilter', { frozenBnAffine: true });
  const trained = new Set(m.paramGroups({ lr: 0.1 }).flatMap((g) => g.params));
  const frozen = m.namedParameters().filter(([, p]) => !trained.has(p)).map(([k]) => k);
  assert.equal(frozen.length, 18 * 3);
  assert.ok(frozen.includes('backbone.layer2.1.conv2.norm.bn_s.weight'));
  m.dispose();
});

test('straight-through Gumbel-sigmoid: hard 0/1 forward values, non-zero gradient to the logits', () => {
  manualSeed(14);
  const z = randn([8, 16]).requiresGrad_(true);
  const w = randn([8, 16]);
  const g = gumbelSigmoidST(z, 1);
  const v = g.toArray();
  assert.ok(v.every((a) => a === 0 || a === 1));
  assert.ok(v.some((a) => a === 0) && v.some((a) => a === 1));
  tidy(() => g.mul(w).sum().backward());
  const gz = z.grad!.toArray();
  assert.ok(gz.filter((a) => a !== 0).length > 100);
});

test('adafilter training: gates are 0/1 and the gate network gets non-zero gradients', () => {
  const m = ada();
  // At initialisation F = S and BN_F = BN_S, so both paths agree and the gate gradient is exactly 0;
  // after fine-tuning has moved F (here: a perturbation) the gate learns.
  perturb(m);
  manualSeed(15);
  const x = randn([4, 3, 16, 16]), y = randint(0, 5, [4]);
  m.train();
  const seen: number[] = [];
  tidy(() => {
    const pass = m.run(x);
    for (const r of pass.gates) seen.push(...(r.g.toArray() as number[]));
    m.loss(pass, y).backward();
  });
  assert.ok(seen.every((a) => a === 0 || a === 1));
  const frac = seen.reduce((a: number, b) => a + b, 0) / seen.length;
  assert.ok(frac > 0.3 && frac < 0.7, `initial fraction ${frac} ≈ 0.5`);
  for (const [k, p] of m.gate.namedParameters()) {
    const gr = p.grad!;
    assert.ok(tidy(() => gr.abs().sum().item()) > 0, `${k} has a non-zero gradient`);
  }
  m.dispose();
});

test('adafilter evaluation is deterministic and collects gate statistics', () => {
  const m = ada();
  perturb(m);
  manualSeed(16);
  const x = randn([6, 3, 16, 16]);
  m.eval();
  const a = noGrad(() => m.forward(x).toArray());
  randn([3]); // move the generator: evaluation must not use it
  const b = noGrad(() => m.forward(x).toArray());
  assert.deepEqual(a, b);
  const stats = m.collectStats();
  {
    noGrad(() => tidy(() => stats.update(m.run(x), [0, 1, 1, 2, 2, 2])));
    noGrad(() => tidy(() => stats.update(m.run(x), [0, 1, 1, 2, 2, 2])));
    const r = stats.result();
    assert.equal(r.examples, 12);
    assert.equal(r.layers.length, 18);
    for (const l of r.layers) {
      assert.ok(l.fraction >= 0 && l.fraction <= 1);
      assert.deepEqual(Object.keys(l.perClass), ['0', '1', '2']);
      assert.ok(l.exampleMin <= l.fraction && l.fraction <= l.exampleMax);
    }
    assert.ok(r.fraction > 0.05 && r.fraction < 0.95, `overall ${r.fraction}`);
  }
  m.dispose();
});

test('budget term, static and random ablations', () => {
  manualSeed(17);
  const x = randn([4, 3, 16, 16]), y = randint(0, 5, [4]);
  const b = ada('adafilter', { budget: 1, budgetTarget: 0 });
  b.train();
  const v = tidy(() => b.extraLoss(b.run(x))!.item());
  assert.ok(v > 0.1 && v < 0.5, `budget ${v} ≈ 0.25`);
  b.dispose();

  const s = ada('adafilter-static');
  s.eval();
  const stats = s.collectStats();
  noGrad(() => tidy(() => stats.update(s.run(x), [0, 0, 1, 1])));
  const r = stats.result();
  assert.ok(r.layers.every((l) => l.exampleStd === 0 && l.filtersVarying === 0), 'static gates do not depend on the example');
  s.train();
  tidy(() => s.loss(s.run(x), y).backward());
  assert.ok((s.gate as any).logits.every((p: Tensor) => p.grad !== null));
  s.dispose();

  const rnd = ada('random-filter', { randomFraction: 0.25 });
  const trained = new Set(rnd.paramGroups({ lr: 0.1 }).flatMap((g) => g.params));
  assert.equal(rnd.gate.parameters().length, 0);
  rnd.eval();
  const st = rnd.collectStats();
  for (let i = 0; i < 5; i++) noGrad(() => tidy(() => st.update(rnd.run(x), [0, 1, 2, 3])));
  const rr = st.result();
  assert.ok(Math.abs(rr.fraction - 0.25) < 0.05, `random fraction ${rr.fraction}`);
  rnd.train();
  tidy(() => rnd.loss(rnd.run(x), y).backward());
  for (const [k, p] of rnd.namedParameters()) assert.equal(p.grad !== null, trained.has(p), k);
  rnd.dispose();
});

test('every gated layer is a GatedConv and the replaced BN is gone from the block', () => {
  const m = ada();
  const block = (m.backbone as any).layers[0].layers[0];
  assert.ok(block.conv1 instanceof GatedConv);
  assert.deepEqual(block.bn1.parameters(), []);
  m.dispose();
});

test('fused paths (one 2C convolution and BN call) match two separate paths: outputs, statistics, gradients', () => {
  const a = ada('adafilter', { fusedPaths: true }), b = ada('adafilter', { fusedPaths: false });
  b.loadStateDict(a.stateDict());
  perturb(a);
  b.loadStateDict(a.stateDict());
  manualSeed(18);
  const x = randn([4, 3, 16, 16]), y = randint(0, 5, [4]);
  const ya = trainPass(a, x, y, 19), yb = trainPass(b, x, y, 19);
  assert.ok(maxAbsDiff(ya, yb) < 1e-5, `outputs differ by ${maxAbsDiff(ya, yb)}`);
  const sa = a.stateDict(), sb = b.stateDict();
  for (const [k, t] of sa) assert.ok(maxAbsDiff(t, sb.get(k)!) < 1e-5, k);
  const pa = new Map(a.namedParameters()), pb = new Map(b.namedParameters());
  for (const [k, p] of pa) {
    const ga = p.grad, gb = pb.get(k)!.grad;
    assert.equal(ga === null, gb === null, k);
    if (ga && gb) assert.ok(maxAbsDiff(ga, gb) < 1e-4 * (1 + tidy(() => gb.abs().max().item())), k);
  }
  assert.ok(a.gated[0].norm.bn_f!.num_batches_tracked.item() === 1);
  a.dispose(); b.dispose();
});
