import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/engine/tensor';
import { manualSeed, randn, randint } from '../../src/engine/random';
import { noGrad } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import { setNumThreads } from '../../src/engine/runtime';
import { ResNet } from '../../src/models/resnet';
import { Conv2d } from '../../src/nn/conv';
import { SGD } from '../../src/optim/sgd';
import { applyMethod, SpotTuneModel, gumbelSoftmaxST } from '../../src/methods';
import { fakePretrained, maxAbsDiff, snapshot } from './helpers';

setNumThreads(2);

const make = (o: Record<string, unknown> = {}) => applyMethod('spottune', fakePretrained(1), 5, o) as SpotTuneModel;

function perturb(m: SpotTuneModel): void {
  noGrad(() => {
    for (const b of m.blocks) for (const mod of b.tuned.modules()) {
      if (mod instanceof Conv2d) mod.weight.add_(tidy(() => randn(mod.weight.shape).mul(0.05)));
    }
  });
}

function reference(m: SpotTuneModel, which: 'tuned' | 'frozen'): ResNet {
  const ref = new ResNet({ blocks: [3, 3, 3], widths: [16, 32, 64], stem: 'cifar', numClasses: 5 });
  const sd = new Map<string, Tensor>();
  for (const [k, t] of m.backbone.stateDict()) {
    const mt = /^(layer\d\.\d)\.(tuned|frozen)\.(.*)$/.exec(k);
    if (mt) { if (mt[2] === which) sd.set(`${mt[1]}.${mt[3]}`, t); continue; }
    sd.set(k, t);
  }
  ref.loadStateDict(sd);
  return ref.eval();
}

test('spottune: policy forced to one path equals the network of that path', () => {
  const m = make();
  perturb(m);
  m.eval();
  manualSeed(21);
  const x = randn([4, 3, 16, 16]);
  for (const [v, which] of [[1, 'tuned'], [0, 'frozen']] as const) {
    m.forcePolicy(v);
    const ref = reference(m, which);
    assert.equal(maxAbsDiff(noGrad(() => m.forward(x)), noGrad(() => ref.forward(x))), 0, which);
    ref.dispose();
  }
  m.forcePolicy(null);
  const a = noGrad(() => m.forward(x).toArray()), b = noGrad(() => m.forward(x).toArray());
  assert.deepEqual(a, b, 'evaluation is deterministic');
  const stats = m.collectStats();
  noGrad(() => tidy(() => stats.update(m.run(x), [0, 1, 0, 1])));
  const r = stats.result();
  assert.equal(r.layers.length, 9);
  assert.equal(r.layers[0].name, 'layer1.0');
  assert.ok(r.layers.every((l) => l.filters === 1 && l.fraction >= 0 && l.fraction <= 1));
  m.dispose();
});

test('spottune: frozen convs bit-identical after steps; gradients reach exactly the trained parameters', () => {
  const m = make();
  perturb(m);
  manualSeed(22);
  const x = randn([4, 3, 16, 16]), y = randint(0, 5, [4]);
  const trained = new Set(m.paramGroups({ lr: 0.1 }).flatMap((g) => g.params));
  const named = m.namedParameters();
  const frozen = named.filter(([, p]) => !trained.has(p)).map(([k]) => k);
  assert.ok(frozen.length > 0 && frozen.every((k) => /\.frozen\.(conv\d|downsample\.0)\.weight$/.test(k)), frozen.join());
  const before = snapshot(m);
  m.train();
  const opt = new SGD(m.paramGroups({ lr: 0.1 }), { lr: 0.1, momentum: 0.9 });
  for (let i = 0; i < 2; i++) tidy(() => { opt.zeroGrad(); m.loss(m.run(x), y).backward(); opt.step(); });
  const after = snapshot(m);
  for (const k of frozen) assert.deepEqual(after.get(k), before.get(k), k);
  for (const p of m.parameters()) p.grad = null;
  tidy(() => m.loss(m.run(x), y).backward());
  for (const [k, p] of named) assert.equal(p.grad !== null, trained.has(p), k);
  assert.ok(tidy(() => m.policy.fc.weight.grad!.abs().sum().item()) > 0, 'policy learns');
  m.dispose();
});

test('straight-through Gumbel-softmax gives one-hot values and gradients', () => {
  manualSeed(23);
  const z = randn([6, 4, 2]).requiresGrad_(true);
  const y = gumbelSoftmaxST(z, 5);
  const v = y.toArray();
  assert.ok(v.every((a) => a === 0 || a === 1));
  const sums = tidy(() => y.sum(2).toArray());
  assert.ok(sums.every((s) => s === 1));
  tidy(() => y.select(2, 1).mul(randn([6, 4])).sum().backward());
  assert.ok(z.grad!.toArray().some((g) => g !== 0));
});
