import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Tensor } from '../../src/engine/tensor';
import { noGrad } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import { setNumThreads } from '../../src/engine/runtime';
import { Module } from '../../src/nn/module';
import * as F from '../../src/nn/functional';
import { MobileNetV2 } from '../../src/models/mobilenetv2';
import { PaddedConv2d } from '../../src/models/padded-conv';
import { ResNet } from '../../src/models/resnet';
import { importTfjs, loadNsfwjsMobileNetV2, nsfwjsMobileNetV2Dir, NSFWJS_PREPROCESS } from '../../src/io/tfjs-import';
import { readTfjsRaw, toPlain } from '../../src/io/tfjs-format';
import { cpuBackend, maxAbsDiff, nchw, run, tf, tfl, toHalf, uniform } from './tfjs-reference';

setNumThreads(1);

type Plain = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** nsfwjs's artifacts decoded for TF.js, cut after `out_relu` and with a free input size. */
async function nsfwjsReference(): Promise<tfl.LayersModel> {
  const raw = readTfjsRaw(path.join(nsfwjsMobileNetV2Dir(), 'model.min.js'));
  const plain = toPlain(raw.model) as Plain;
  const cfg = plain.modelTopology.model_config.config;
  cfg.layers = cfg.layers.slice(0, cfg.layers.findIndex((l: Plain) => l.name === 'out_relu') + 1);
  cfg.layers[0].config.batch_input_shape = [null, null, null, 3];
  cfg.output_layers = [['out_relu', 0, 0]];
  delete plain.modelTopology.training_config;
  const data = Buffer.concat(raw.groups.map((g) => g.bytes));
  return tfl.loadLayersModel(tf.io.fromMemory({
    modelTopology: plain.modelTopology,
    weightSpecs: plain.weightsManifest.flatMap((g: Plain) => g.weights),
    weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.length),
  }), { strict: false });
}

/** Our MobileNetV2 up to features.`upTo` (inclusive), NCHW. */
function partial(model: MobileNetV2, x: Tensor, upTo: number): Tensor {
  let h = x;
  const layers = model.features_ as unknown as Record<string, Module & { forward(t: Tensor): Tensor }>;
  for (let i = 0; i <= upTo; i++) h = layers[String(i)].forward(h);
  return h;
}

test('nsfwjs MobileNetV2 matches TF.js: block_5_add and pooled out_relu, 96 and 224 px', async () => {
  await cpuBackend();
  const ref = await nsfwjsReference();
  const imported = loadNsfwjsMobileNetV2(7);
  const model = imported.model as MobileNetV2;
  try {
    assert.equal(imported.arch, 'mobilenetv2');
    assert.equal(model.widthMult, 1);
    assert.equal(model.padding, 'keras');
    assert.deepEqual(imported.preprocess, NSFWJS_PREPROCESS);
    assert.deepEqual(imported.skipped.sort(), ['dense_1/bias', 'dense_1/kernel', 'dense_2/bias', 'dense_2/kernel', 'dense_3/bias', 'dense_3/kernel']);
    assert.equal(model.classifier().module.outFeatures, 7);
    assert.equal(model.training, false);
    // The stride-2 convs carry Keras's bottom/right padding where an exporter can read it.
    const padded = model.convBns().filter((c) => c.conv instanceof PaddedConv2d).map((c) => c.convName);
    assert.deepEqual(padded, ['features.0.0', 'features.2.conv.1.0', 'features.4.conv.1.0', 'features.7.conv.1.0', 'features.14.conv.1.0']);
    assert.ok(model.convBns().every((c) => c.bn.eps === 1e-3));

    for (const [shape, seed] of [[[2, 96, 96, 3], 1], [[1, 224, 224, 3], 2]] as const) {
      const x = uniform(shape[0] * shape[1] * shape[2] * shape[3], seed);
      const [mid, out] = run(ref, ['block_5_add', 'out_relu'], x, [...shape]);
      const { midErr, featErr } = tidy(() => noGrad(() => {
        const xt = nchw(x, [...shape]);
        return { midErr: maxAbsDiff(partial(model, xt, 6), mid.data, mid.shape), featErr: maxAbsDiff(model.features(xt), out.pooled, [shape[0], 1280]) };
      }));
      console.log(`nsfwjs ${shape[1]} px: block_5_add max abs err ${midErr.toExponential(2)}, pooled out_relu ${featErr.toExponential(2)}`);
      assert.ok(midErr <= 1e-4, `block_5_add differs by ${midErr}`);
      assert.ok(featErr <= 1e-4, `pooled features differ by ${featErr}`);
    }
  } finally {
    model.dispose();
    ref.dispose();
  }
});

/** Random non-trivial weights for every layer (BN statistics included) of a tfjs-layers model. */
function randomise(model: tfl.LayersModel, seed: number): void {
  model.layers.forEach((layer, li) => {
    const ws = layer.getWeights();
    if (!ws.length) return;
    const cls = layer.getClassName();
    layer.setWeights(ws.map((w, wi) => {
      const n = w.size, s = seed * 1000 + li * 10 + wi;
      if (cls === 'BatchNormalization') {
        const range = wi === 0 || wi === 3 ? [0.5, 1.5] : [-0.2, 0.2]; // gamma/variance positive
        return tf.tensor(uniform(n, s, range[0], range[1]), w.shape);
      }
      const fanIn = w.shape.length === 4 ? w.shape[0] * w.shape[1] * (cls === 'DepthwiseConv2D' ? 1 : w.shape[2]) : 1;
      const r = w.shape.length === 4 ? Math.sqrt(3 / fanIn) : 0.1;
      return tf.tensor(uniform(n, s, -r, r), w.shape);
    }));
  });
}

interface Saved {
  modelTopology: Plain;
  weightSpecs: Plain[];
  weightData: ArrayBuffer;
}

async function save(model: tfl.LayersModel): Promise<Saved> {
  let saved: Saved | null = null;
  await model.save(tf.io.withSaveHandler(async (a) => {
    saved = { modelTopology: a.modelTopology as Plain, weightSpecs: a.weightSpecs as Plain[], weightData: a.weightData as ArrayBuffer };
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return saved!;
}

/**
 * Re-encodes float32 weights in turn as float32, uint8, uint16 and float16, as the TF.js converter's
 * quantisation writes them, so both TF.js and the importer read the same quantised values.
 */
function quantise(s: Saved): Saved {
  const src = new Float32Array(s.weightData);
  const parts: Buffer[] = [];
  let off = 0;
  const specs = s.weightSpecs.map((spec, i) => {
    const n = spec.shape.reduce((a: number, b: number) => a * b, 1);
    const v = src.subarray(off, off += n);
    const mode = ['float32', 'uint8', 'uint16', 'float16'][i % 4];
    if (mode === 'float32') { parts.push(Buffer.from(v.buffer, v.byteOffset, v.byteLength)); return spec; }
    if (mode === 'float16') {
      const b = Buffer.alloc(2 * n);
      v.forEach((x, j) => b.writeUInt16LE(toHalf(x), 2 * j));
      parts.push(b);
      return { ...spec, quantization: { dtype: 'float16' } };
    }
    const levels = mode === 'uint8' ? 255 : 65535;
    let lo = Infinity, hi = -Infinity;
    for (const x of v) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
    const scale = (hi - lo) / levels || 1;
    const b = Buffer.alloc((mode === 'uint8' ? 1 : 2) * n);
    v.forEach((x, j) => {
      const q = Math.round((x - lo) / scale);
      if (mode === 'uint8') b.writeUInt8(q, j); else b.writeUInt16LE(q, 2 * j);
    });
    parts.push(b);
    return { ...spec, quantization: { dtype: mode, min: lo, scale } };
  });
  const data = Buffer.concat(parts);
  return { modelTopology: s.modelTopology, weightSpecs: specs, weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.length) };
}

/** Writes model.json + two binary shards, as the TF.js converter lays a model out. */
function writeModelJson(s: Saved): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adafilter-tfjs-'));
  const data = Buffer.from(s.weightData);
  const cut = Math.floor(data.length / 2);
  fs.writeFileSync(path.join(dir, 'group1-shard1of2.bin'), data.subarray(0, cut));
  fs.writeFileSync(path.join(dir, 'group1-shard2of2.bin'), data.subarray(cut));
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({
    format: 'layers-model', generatedBy: 'test', modelTopology: s.modelTopology,
    weightsManifest: [{ paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'], weights: s.weightSpecs }],
  }));
  return dir;
}

/** keras.applications' ResNet (v1) layout and names, small: stages [2, 1], widths [4, 8]. */
function kerasResNet(): tfl.LayersModel {
  const L = tfl.layers;
  const bn = (name: string) => L.batchNormalization({ axis: -1, epsilon: 1.001e-5, name });
  const input = tfl.input({ shape: [null, null, 3] as unknown as number[] });
  let x = L.zeroPadding2d({ padding: [[3, 3], [3, 3]], name: 'conv1_pad' }).apply(input) as tfl.SymbolicTensor;
  x = L.conv2d({ filters: 8, kernelSize: 7, strides: 2, useBias: true, name: 'conv1_conv' }).apply(x) as tfl.SymbolicTensor;
  x = bn('conv1_bn').apply(x) as tfl.SymbolicTensor;
  x = L.activation({ activation: 'relu', name: 'conv1_relu' }).apply(x) as tfl.SymbolicTensor;
  x = L.zeroPadding2d({ padding: [[1, 1], [1, 1]], name: 'pool1_pad' }).apply(x) as tfl.SymbolicTensor;
  x = L.maxPooling2d({ poolSize: 3, strides: 2, name: 'pool1_pool' }).apply(x) as tfl.SymbolicTensor;
  const stages: [number, number, number][] = [[4, 2, 1], [8, 1, 2]];
  stages.forEach(([w, n, stride], si) => {
    for (let j = 1; j <= n; j++) {
      const p = `conv${si + 2}_block${j}_`;
      const s = j === 1 ? stride : 1;
      let shortcut = x;
      if (j === 1) {
        shortcut = L.conv2d({ filters: 4 * w, kernelSize: 1, strides: s, name: `${p}0_conv` }).apply(x) as tfl.SymbolicTensor;
        shortcut = bn(`${p}0_bn`).apply(shortcut) as tfl.SymbolicTensor;
      }
      let h = L.conv2d({ filters: w, kernelSize: 1, strides: s, name: `${p}1_conv` }).apply(x) as tfl.SymbolicTensor;
      h = L.activation({ activation: 'relu', name: `${p}1_relu` }).apply(bn(`${p}1_bn`).apply(h)) as tfl.SymbolicTensor;
      h = L.conv2d({ filters: w, kernelSize: 3, padding: 'same', name: `${p}2_conv` }).apply(h) as tfl.SymbolicTensor;
      h = L.activation({ activation: 'relu', name: `${p}2_relu` }).apply(bn(`${p}2_bn`).apply(h)) as tfl.SymbolicTensor;
      h = L.conv2d({ filters: 4 * w, kernelSize: 1, name: `${p}3_conv` }).apply(h) as tfl.SymbolicTensor;
      h = bn(`${p}3_bn`).apply(h) as tfl.SymbolicTensor;
      h = L.add({ name: `${p}add` }).apply([shortcut, h]) as tfl.SymbolicTensor;
      x = L.activation({ activation: 'relu', name: `${p}out` }).apply(h) as tfl.SymbolicTensor;
    }
  });
  return tfl.model({ inputs: input, outputs: x });
}

test('Keras-named ResNet saved by tfjs-layers (float32/uint8/uint16/float16 weights) matches TF.js', async () => {
  await cpuBackend();
  const built = kerasResNet();
  randomise(built, 3);
  const saved = quantise(await save(built));
  built.dispose();
  const ref = await tfl.loadLayersModel(tf.io.fromMemory(saved));
  const dir = writeModelJson(saved);
  const imported = importTfjs(dir, { numClasses: 3 });
  const model = imported.model as ResNet;
  try {
    assert.equal(imported.arch, 'resnet');
    assert.deepEqual(imported.skipped, []);
    assert.deepEqual(model.config.blocks, [2, 1]);
    assert.deepEqual(model.config.widths, [4, 8]);
    // Keras's stride sits on the first 1×1 of a stage.
    assert.equal(model.blocks()[2].convs[0].conv.stride, 2);
    assert.equal(model.blocks()[2].convs[1].conv.stride, 1);
    const shape = [2, 32, 32, 3];
    const x = uniform(2 * 32 * 32 * 3, 4);
    // Keras feeds BGR; the imported model takes RGB.
    const bgr = x.map((_, i) => x[i - (i % 3) + 2 - (i % 3)]);
    const [mid, out] = run(ref, ['conv2_block1_out', 'conv3_block1_out'], bgr, shape);
    const { midErr, featErr } = tidy(() => noGrad(() => {
      const xt = nchw(x, shape);
      let h = F.relu(model.bn1.forward(model.conv1.forward(xt)));
      h = F.maxPool2d(h, 3, { stride: 2, padding: 1 });
      h = ((model.layers[0] as unknown as Record<string, Module & { forward(t: Tensor): Tensor }>)['0']).forward(h);
      return { midErr: maxAbsDiff(h, mid.data, mid.shape), featErr: maxAbsDiff(model.features(xt), out.pooled, [2, 32]) };
    }));
    console.log(`keras ResNet: conv2_block1_out max abs err ${midErr.toExponential(2)}, pooled features ${featErr.toExponential(2)}`);
    assert.ok(midErr <= 1e-4, `conv2_block1_out differs by ${midErr}`);
    assert.ok(featErr <= 1e-4, `pooled features differ by ${featErr}`);
  } finally {
    model.dispose();
    ref.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
