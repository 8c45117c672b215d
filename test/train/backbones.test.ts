import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { noGrad } from '../../src/engine/autograd';
import { manualSeed, randn } from '../../src/engine/random';
import { tidy } from '../../src/engine/scope';
import { setNumThreads } from '../../src/engine/runtime';
import { isInputError } from '../../src/errors';
import { MobileNetV2 } from '../../src/models/mobilenetv2';
import { applyMethod } from '../../src/methods/registry';
import type { AdaFilterModel } from '../../src/methods/adafilter';
import { Backbone } from '../../src/models/backbone';
import { openBackbone, openBackboneAsIs, parseArchOptions, rebuildArchitecture } from '../../src/train/backbones';
import { buildModel } from '../../src/models/registry';
import { exportOnnx } from '../../src/io/onnx/export';
import { saveSafetensors } from '../../src/io/safetensors';

setNumThreads(1);

const maxDiff = (a: Backbone, b: Backbone, side: number) => tidy(() => noGrad(() => {
  manualSeed(1);
  const x = randn([2, 3, side, side]);
  return a.features(x).sub(b.features(x)).abs().max().item();
}));

test('nsfwjs backbone: Keras padding and BN eps are recorded and rebuilt exactly', () => {
  const bb = openBackbone('nsfwjs', 3);
  try {
    assert.equal(bb.arch, 'mobilenetv2');
    assert.deepEqual(bb.input, { size: 224, channels: 3, normalize: { mean: [0, 0, 0], std: [1, 1, 1] } });
    assert.deepEqual(bb.archOptions, { family: 'mobilenetv2', widthMult: 1, padding: 'keras', inChannels: 3, bnEps: 1e-3 });
    const again = rebuildArchitecture(bb.arch, 3, JSON.parse(JSON.stringify(bb.archOptions)));
    try {
      assert.equal((again as MobileNetV2).padding, 'keras');
      again.loadStateDict(bb.model.stateDict());
      bb.model.eval(); again.eval();
      assert.equal(maxDiff(bb.model, again, 64), 0);
    } finally {
      again.dispose();
    }
  } finally {
    bb.model.dispose();
  }
});

test('architecture options from files are checked', () => {
  for (const bad of ['{', '[]', '{"family":"vgg","bnEps":0.001}', '{"family":"mobilenetv2","widthMult":1,"padding":"same","inChannels":3,"bnEps":0.001}',
    '{"family":"mobilenetv2","widthMult":1,"padding":"keras","inChannels":3,"bnEps":-1}',
    '{"family":"resnet","config":{"blocks":[1e9],"widths":[64],"stem":"cifar"},"strideOn":"3x3","bnEps":1e-5}']) {
    assert.throws(() => parseArchOptions(bad, 'x'), (e) => isInputError(e), bad);
  }
});

test('unknown or unreadable backbones are InputErrors', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adafilter-bb-'));
  try {
    fs.writeFileSync(path.join(dir, 'junk.onnx'), 'not a protobuf at all');
    for (const spec of ['resnet99', path.join(dir, 'missing.onnx'), path.join(dir, 'junk.onnx'), path.join(dir, 'model.json'), `resnet20:${path.join(dir, 'junk.onnx')}`]) {
      assert.throws(() => openBackbone(spec, 3), (e) => isInputError(e), spec);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// GatedConv must carry PaddedConv2d.pads: otherwise a Keras-padded backbone's stride-2 depthwise
// convs lose their bottom/right padding once gated.
test('AdaFilter on the nsfwjs backbone with every gate 1 computes what finetune computes', () => {
  // Same seed, same fresh head: the two models differ only in how the method wraps the convs.
  manualSeed(0);
  const ft = applyMethod('finetune', openBackbone('nsfwjs', 3).model, 3);
  manualSeed(0);
  const af = applyMethod('adafilter', openBackbone('nsfwjs', 3).model, 3, { forceGates: 1 }) as AdaFilterModel;
  try {
    ft.eval(); af.eval();
    const d = tidy(() => noGrad(() => {
      manualSeed(1);
      const x = randn([2, 3, 64, 64]);
      return ft.forward(x).sub(af.forward(x)).abs().max().item();
    }));
    assert.ok(d < 1e-4, `logits differ by ${d}`);
  } finally {
    ft.dispose(); af.dispose();
  }
});

test('ONNX and plain safetensors backbones: the architecture found or given, the weights as exported', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adafilter-bb-'));
  const src = buildModel('resnet20', 10);
  try {
    src.eval();
    exportOnnx(src, path.join(dir, 'r.onnx'), { inputShape: [3, 32, 32] });
    saveSafetensors(src, path.join(dir, 'plain.safetensors')); // no metadata: torchvision names only
    for (const spec of [path.join(dir, 'r.onnx'), `resnet20:${path.join(dir, 'r.onnx')}`, `resnet20:${path.join(dir, 'plain.safetensors')}`]) {
      const bb = openBackbone(spec, 4);
      try {
        assert.equal(bb.arch, 'resnet20', spec);
        assert.equal(bb.archOptions, undefined);
        assert.equal(bb.model.classifier().module.outFeatures, 4);
        bb.model.eval();
        assert.ok(maxDiff(src, bb.model, 32) < 1e-5, spec);
      } finally {
        bb.model.dispose();
      }
    }
    const asIs = openBackboneAsIs(path.join(dir, 'plain.safetensors'), { arch: 'resnet20' });
    assert.equal(asIs.hasHead, true);
    assert.equal(asIs.model.classifier().module.outFeatures, 10);
    asIs.model.dispose();
    assert.throws(() => openBackbone(`resnet32:${path.join(dir, 'r.onnx')}`, 4), /resnet32 has 33/);
  } finally {
    src.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
