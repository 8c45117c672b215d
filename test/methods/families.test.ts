/**
 * Every method on the other backbone families: MobileNetV2 (inverted residuals: expand, depthwise and
 * project convs, head at classifier.1 after dropout) and a Bottleneck ResNet (1×1, 3×3, 1×1). Small
 * configurations: mobilenetv2-0.35 at 32×32, a two-block Bottleneck ResNet with widths 4/8.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/engine/tensor';
import { manualSeed, randn, randint } from '../../src/engine/random';
import { noGrad } from '../../src/engine/autograd';
import { keep, tidy } from '../../src/engine/scope';
import { setNumThreads } from '../../src/engine/runtime';
import { ResNet } from '../../src/models/resnet';
import { MobileNetV2 } from '../../src/models/mobilenetv2';
import { Backbone } from '../../src/models/backbone';
import { buildModel } from '../../src/models/registry';
import { Conv2d } from '../../src/nn/conv';
import { Linear } from '../../src/nn/linear';
import { Module } from '../../src/nn/module';
import { SGD } from '../../src/optim/sgd';
import { applyMethod, AdaFilterModel, SpotTuneModel, describeBackbone } from '../../src/methods';
import { maxAbsDiff, perturb, randomizeBatchNorm, step, trainedNames, trainPass, withGrad } from './helpers';

setNumThreads(2);

interface Family {
  name: string;
  build(): Backbone;
  input: number[];
  /** Gated layers with the default 'blocks' selection. */
  gated: number;
  blocks: number;
  head: string;
}

const families: Family[] = [
  {
    name: 'mobilenetv2-0.35', build: () => buildModel('mobilenetv2-0.35', 10), input: [2, 3, 32, 32],
    gated: 2 + 16 * 3, blocks: 17, head: 'classifier.1',
  },
  {
    name: 'bottleneck resnet',
    build: () => new ResNet({ blocks: [1, 1], widths: [4, 8], stem: 'cifar', block: 'bottleneck', numClasses: 10 }),
    input: [2, 3, 8, 8], gated: 6, blocks: 2, head: 'fc',
  },
];

/** A freshly built backbone with non-trivial BN parameters and running statistics ("pretrained"). */
function fake(f: Family, seed = 0): Backbone {
  manualSeed(seed);
  return randomizeBatchNorm(f.build());
}

/** A fresh backbone of the same family for 5 classes loaded with `sd` (names mapped by the caller). */
function plain(f: Family, sd: Map<string, Tensor>): Backbone {
  const ref = f.build();
  ref.resetClassifier(5);
  ref.loadStateDict(sd);
  return ref.eval() as Backbone;
}

/** Copies of every parameter and buffer by name (tensors: comparing plain arrays of a MobileNetV2 is slow). */
function snapshot(m: Module): Map<string, Tensor> {
  return noGrad(() => new Map([...m.stateDict()].map(([k, t]) => [k, keep(t.detach().clone())])));
}

const same = (a: Tensor, b: Tensor) => noGrad(() => tidy(() => a.ne(b).sum().item() === 0));

function disposeAll(...ms: Map<string, Tensor>[]): void {
  for (const m of ms) for (const t of m.values()) t.dispose();
}


/** The plain network made of one path of an AdaFilter model (its F or S weights and BN_F / BN_S / BN). */
function adaReference(f: Family, m: AdaFilterModel, path: 'f' | 's', bnName: string): Backbone {
  const fresh = f.build(); // for the conv → BN names
  const bnOf = new Map(fresh.convBns().map((c) => [c.convName, c.bnName]));
  const gated = new Set(m.gatedNames);
  const sd = new Map<string, Tensor>();
  for (const [k, t] of m.backbone.stateDict()) {
    let mt = /^(.*)\.weight_(f|s)$/.exec(k);
    if (mt && gated.has(mt[1])) { if (mt[2] === path) sd.set(`${mt[1]}.weight`, t); continue; }
    mt = /^(.*)\.norm\.(bn_f|bn_s|bn)\.(.*)$/.exec(k);
    if (mt && gated.has(mt[1])) { if (mt[2] === bnName) sd.set(`${bnOf.get(mt[1])}.${mt[3]}`, t); continue; }
    sd.set(k, t);
  }
  fresh.dispose();
  return plain(f, sd);
}

for (const f of families) {
  test(`${f.name}: adafilter gates every block conv (not stem, shortcuts, head); gates 1 = fine-tuned, 0 = pretrained network`, () => {
    for (const [method, bnF, bnS] of [['adafilter', 'bn_f', 'bn_s'], ['adafilter-nogbn', 'bn', 'bn']] as const) {
      const m = applyMethod(method, fake(f, 1), 5) as AdaFilterModel;
      assert.equal(m.gated.length, f.gated);
      assert.ok(m.gatedNames.every((n) => n.startsWith(f.head === 'fc' ? 'layer' : 'features.') && !n.includes('downsample')));
      assert.ok(!m.gatedNames.includes('features.0.0') && !m.gatedNames.includes('features.18.0'));
      const depthwise = m.gated.filter((g) => g.groups > 1);
      if (f.head === 'fc') assert.equal(depthwise.length, 0);
      else assert.equal(depthwise.length, f.blocks, 'one depthwise conv per inverted residual');
      // the LSTM input projection of each gated layer is sized to its input channels
      if (method === 'adafilter') {
        const proj = (m.gate as any).proj as Linear[];
        m.gated.forEach((g, i) => assert.equal(proj[i].inFeatures, g.inChannels));
      }
      perturb(m);
      m.eval();
      manualSeed(11);
      const x = randn(f.input);
      const run = (mod: Module) => noGrad(() => mod.forward(x));
      const refF = adaReference(f, m, 'f', bnF), refS = adaReference(f, m, 's', bnS);
      m.forceGates(1);
      const yF = run(m);
      const calls = noGrad(() => tidy(() => m.run(x).gates.map((r) => r.layer)));
      assert.deepEqual(calls, Array.from({ length: f.gated }, (_, i) => i), 'gated layers run in order');
      m.forceGates(0);
      const yS = run(m);
      m.forceGates(null);
      const yG = run(m);
      assert.equal(maxAbsDiff(yF, run(refF)), 0, `${method}: gates 1 = fine-tuned network`);
      assert.equal(maxAbsDiff(yS, run(refS)), 0, `${method}: gates 0 = pretrained network`);
      assert.ok(maxAbsDiff(yF, yS) > 1e-4, 'the two paths differ');
      assert.ok(Number.isFinite(maxAbsDiff(yG, yS)));
      m.dispose(); refF.dispose(); refS.dispose();
    }
  });

  test(`${f.name}: adafilter frozen S weights bit-identical after steps; gradients reach exactly the trained parameters`, () => {
    const m = applyMethod('adafilter', fake(f, 2), 5) as AdaFilterModel;
    manualSeed(13);
    const x = randn(f.input), y = randint(0, 5, [f.input[0]]);
    const trained = trainedNames(m, { lr: 0.1, gateLr: 0.01 });
    const named = m.namedParameters();
    const frozen = named.filter(([k]) => !trained.has(k)).map(([k]) => k);
    assert.equal(frozen.length, f.gated);
    assert.ok(frozen.every((k) => k.endsWith('.weight_s')), frozen.join());
    const before = snapshot(m);
    m.train();
    const opt = new SGD(m.paramGroups({ lr: 0.1, gateLr: 0.01 }), { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
    for (let i = 0; i < 2; i++) step(m, opt, x, y);
    const after = snapshot(m);
    for (const k of frozen) assert.ok(same(after.get(k)!, before.get(k)!), k);
    const firstF = `backbone.${m.gatedNames[0]}.weight_f`;
    assert.ok(!same(after.get(firstF)!, before.get(firstF)!));
    disposeAll(before, after);
    assert.deepEqual(withGrad(m, x, y), trained);
    m.dispose();
  });

  test(`${f.name}: linear-probe, finetune, l2sp and bss put the new head at ${f.head}`, () => {
    manualSeed(14);
    const x = randn(f.input), y = randint(0, 5, [f.input[0]]);
    for (const method of ['linear-probe', 'finetune', 'l2sp', 'bss']) {
      const bb = fake(f, 3);
      const m = applyMethod(method, bb, 5);
      assert.equal(m.headKey, f.head);
      assert.equal(bb.classifier().module, m.head, method);
      assert.equal(m.head.outFeatures, 5);
      assert.equal(m.head.inFeatures, bb.featureDim);
      const names = new Set(m.backbone.namedParameters().map(([k]) => k));
      assert.ok(names.has(`${f.head}.weight`) && names.has(`${f.head}.bias`), method);
      const headNames = new Set([`backbone.${f.head}.weight`, `backbone.${f.head}.bias`]);
      const all = new Set(m.namedParameters().map(([k]) => k));
      m.train();
      if (method === 'linear-probe') {
        assert.deepEqual(trainedNames(m, { lr: 0.1, gateLr: 0.01 }), headNames);
        const before = snapshot(m);
        const opt = new SGD(m.paramGroups({ lr: 0.1 }), { lr: 0.1, momentum: 0.9 });
        step(m, opt, x, y);
        const after = snapshot(m);
        for (const [k, v] of before) assert.equal(same(after.get(k)!, v), !headNames.has(k), k);
        disposeAll(before, after);
        assert.deepEqual(withGrad(m, x, y), headNames);
      } else {
        assert.deepEqual(trainedNames(m, { lr: 0.1, gateLr: 0.01 }), all);
        assert.deepEqual(withGrad(m, x, y), all);
        if (method !== 'finetune') assert.ok(tidy(() => m.extraLoss(m.run(x))!.item()) >= 0);
      }
      // the adapted model in eval mode is the backbone's own forward (dropout included in the path)
      m.eval();
      assert.equal(maxAbsDiff(noGrad(() => m.forward(x)), noGrad(() => bb.forward(x))), 0, method);
      m.dispose();
    }
  });

  test(`${f.name}: spottune forced to one path equals that network; frozen convs fixed; gradients`, () => {
    const m = applyMethod('spottune', fake(f, 4), 5) as SpotTuneModel;
    assert.equal(m.blocks.length, f.blocks);
    noGrad(() => {
      for (const b of m.blocks) for (const mod of b.tuned.modules()) {
        if (mod instanceof Conv2d) mod.weight.add_(tidy(() => randn(mod.weight.shape).mul(0.05)));
      }
    });
    m.eval();
    manualSeed(21);
    const x = randn(f.input), y = randint(0, 5, [f.input[0]]);
    const outs: Tensor[] = [];
    for (const [v, which] of [[1, 'tuned'], [0, 'frozen']] as const) {
      const sd = new Map<string, Tensor>();
      for (const [k, t] of m.backbone.stateDict()) {
        const mt = /^(.*)\.(tuned|frozen)\.(.*)$/.exec(k);
        if (mt) { if (mt[2] === which) sd.set(`${mt[1]}.${mt[3]}`, t); continue; }
        sd.set(k, t);
      }
      const ref = plain(f, sd);
      m.forcePolicy(v);
      const out = noGrad(() => m.forward(x));
      outs.push(out);
      assert.equal(maxAbsDiff(out, noGrad(() => ref.forward(x))), 0, which);
      ref.dispose();
    }
    assert.ok(maxAbsDiff(outs[0], outs[1]) > 1e-4, 'the two paths differ');
    m.forcePolicy(null);
    const trained = trainedNames(m, { lr: 0.1, gateLr: 0.01 });
    const frozen = m.namedParameters().filter(([k]) => !trained.has(k)).map(([k]) => k);
    assert.ok(frozen.length > 0 && frozen.every((k) => /\.frozen\..*\.weight$/.test(k)), frozen.join());
    const before = snapshot(m);
    m.train();
    const opt = new SGD(m.paramGroups({ lr: 0.1 }), { lr: 0.1, momentum: 0.9 });
    step(m, opt, x, y);
    const after = snapshot(m);
    for (const k of frozen) assert.ok(same(after.get(k)!, before.get(k)!), k);
    disposeAll(before, after);
    assert.deepEqual(withGrad(m, x, y), trained);
    m.dispose();
  });
}

test('describeBackbone: MobileNetV2 sites by kind; the first block has no expand conv', () => {
  const m = buildModel('mobilenetv2-0.35', 10) as MobileNetV2;
  const info = describeBackbone(m);
  assert.equal(info.family, 'mobilenetv2');
  assert.equal(info.headKey, 'classifier.1');
  assert.equal(info.featureDim, m.featureDim);
  assert.deepEqual(info.convSites.slice(0, 4).map((s) => [s.name, s.kind, s.layerKind]), [
    ['features.0.0', 'stem', 'conv'],
    ['features.1.conv.0.0', 'block', 'depthwise'],
    ['features.1.conv.1', 'block', 'project'],
    ['features.2.conv.0.0', 'block', 'expand'],
  ]);
  assert.equal(info.convSites[info.convSites.length - 1].kind, 'head');
  assert.equal(info.blocks.length, 17);
  assert.equal(info.blocks.filter((b) => b.residual).length, 10);
  m.dispose();
});

test('mobilenetv2: depthwise gated convs give the same outputs and gradients fused (shared BN call) and unfused', () => {
  const f = families[0];
  const a = applyMethod('adafilter', fake(f, 5), 5, { fusedPaths: true }) as AdaFilterModel;
  const b = applyMethod('adafilter', fake(f, 5), 5, { fusedPaths: false }) as AdaFilterModel;
  noGrad(() => { for (const g of a.gated) g.weight_f.add_(tidy(() => randn(g.weight_f.shape).mul(0.05))); });
  b.loadStateDict(a.stateDict());
  manualSeed(31);
  const x = randn(f.input), y = randint(0, 5, [f.input[0]]);
  const ya = trainPass(a, x, y, 32), yb = trainPass(b, x, y, 32);
  assert.ok(maxAbsDiff(ya, yb) < 1e-5, `outputs differ by ${maxAbsDiff(ya, yb)}`);
  const pb = new Map(b.namedParameters());
  const dw = a.gated.findIndex((g) => g.groups > 1);
  const name = `backbone.${a.gatedNames[dw]}.weight_f`;
  const ga = new Map(a.namedParameters()).get(name)!.grad!, gb = pb.get(name)!.grad!;
  assert.ok(maxAbsDiff(ga, gb) < 1e-4 * (1 + tidy(() => gb.abs().max().item())), name);
  a.dispose(); b.dispose();
});
