// SpotTune's frozen path is a copy of each pretrained block: it must compute exactly what the block
// computes, including what importers change after construction (Keras pads and BN eps, a stride
// moved to the 1×1 conv, a per-layer eps), which a copy made from constructor arguments loses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noGrad } from '../../src/engine/autograd';
import { manualSeed, randn } from '../../src/engine/random';
import { tidy } from '../../src/engine/scope';
import { setNumThreads } from '../../src/engine/runtime';
import { Module } from '../../src/nn/module';
import { Conv2d } from '../../src/nn/conv';
import { BatchNorm2d } from '../../src/nn/batchnorm';
import { PaddedConv2d } from '../../src/models/padded-conv';
import { applyMethod } from '../../src/methods/registry';
import type { SpotTuneModel } from '../../src/methods/spottune';
import { openBackbone, rebuildArchitecture } from '../../src/train/backbones';
import { randomizeBatchNorm } from './helpers';

setNumThreads(1);

/** Per module, by name: its class and every setting a state dict does not carry. */
function settings(m: Module): string[] {
  return m.namedModules().map(([name, mod]) => {
    let s = `${name}: ${mod.constructor.name}`;
    if (mod instanceof Conv2d) {
      const pads = mod instanceof PaddedConv2d ? mod.pads.join(',') : String(mod.padding);
      s += ` k${mod.kernelSize} s${mod.stride} d${mod.dilation} g${mod.groups} pads ${pads} bias ${mod.bias !== null}`;
    }
    if (mod instanceof BatchNorm2d) s += ` eps ${mod.eps} momentum ${mod.momentum}`;
    return s;
  });
}

/** Frozen and fine-tuned copies start equal: same settings per block, same output with either path forced. */
function assertCopiesFaithful(m: SpotTuneModel, side: number): void {
  assert.ok(m.blocks.length > 0);
  for (const b of m.blocks) assert.deepEqual(settings(b.frozen), settings(b.tuned), `block ${b.index}`);
  m.eval();
  manualSeed(3);
  const x = randn([2, 3, side, side]);
  const out = (path: 0 | 1) => { m.forcePolicy(path); return noGrad(() => m.forward(x)); };
  const diff = tidy(() => out(0).sub(out(1)).abs().max().item());
  assert.equal(diff, 0, 'the frozen path computes what the pretrained block computes');
}

test('spottune on nsfwjs: frozen copies keep Keras pads and BN eps 1e-3', () => {
  const bb = openBackbone('nsfwjs', 3);
  const m = applyMethod('spottune', bb.model, 3) as SpotTuneModel;
  try {
    const eps = new Set(m.blocks.flatMap((b) => b.frozen.modules().filter((x) => x instanceof BatchNorm2d).map((x) => (x as BatchNorm2d).eps)));
    assert.deepEqual([...eps], [1e-3]);
    assert.ok(m.blocks.some((b) => b.frozen.modules().some((x) => x instanceof PaddedConv2d)), 'stride-2 depthwise convs pad bottom/right');
    assertCopiesFaithful(m, 64);
  } finally {
    m.dispose();
  }
});

test('spottune on a Keras-style ResNet: stride on the 1×1 conv and a per-layer eps survive the copy', () => {
  manualSeed(0);
  const backbone = randomizeBatchNorm(rebuildArchitecture('resnet50', 4, {
    family: 'resnet', config: { blocks: [1, 2], widths: [8, 16], stem: 'cifar', block: 'bottleneck' },
    strideOn: '1x1', bnEps: 1e-3, bnEpsByLayer: { 'layer2.0.bn2': 1e-2, 'layer2.0.downsample.1': 1e-4 },
  }));
  const m = applyMethod('spottune', backbone, 4) as SpotTuneModel;
  try {
    assertCopiesFaithful(m, 16);
  } finally {
    m.dispose();
  }
});
