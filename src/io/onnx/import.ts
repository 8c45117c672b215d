/**
 * ONNX import: the weights of a ResNet / MobileNetV2 exported by torch.onnx.export (torchvision's
 * models, our CIFAR ResNets) loaded into the matching architecture of our registry. Only the
 * initializers are used; the graph is followed to know which initializer belongs to which layer,
 * because an eval-mode export folds every BN into the convolution before it and renames the results
 * (onnx::Conv_123), so names alone cannot say where a tensor goes.
 */
import * as fs from 'node:fs';
import { Tensor } from '../../engine/tensor';
import { fromTyped } from '../../engine/creation';
import { InputError } from '../../errors';
import { buildModel, modelSpec } from '../../models/registry';
import type { Backbone, ConvBn } from '../../models/backbone';
import { DataType, decodeModel, OnnxAttribute, OnnxModel, OnnxNode, OnnxTensor } from './onnx-model';

/** Protobuf messages are limited to 2 GiB, so a larger file is not a valid ONNX model (and is never read). */
export const MAX_ONNX_BYTES = 2 ** 31 - 1;

export interface ImportOnnxOptions {
  /** Expected number of classes; default: whatever the file's classifier has. */
  numClasses?: number;
}

export interface ImportOnnxReport {
  /** Conv+BN pairs that came folded (one Conv with bias) and were loaded as conv + identity-with-bias BN. */
  fused: number;
  /** Conv+BN pairs with a BatchNormalization node of their own. */
  separate: number;
  /** Initializers whose names were our state-dict names (and agreed with the graph). */
  byName: number;
  numClasses: number;
  producer: string;
  opset: number;
}

/** Reads and decodes an ONNX file (bounded: at most MAX_ONNX_BYTES, every field checked). */
export function readOnnx(file: string): OnnxModel {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw new InputError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!st.isFile()) throw new InputError(`${file}: not a regular file`);
  if (st.size === 0) throw new InputError(`${file}: empty file`);
  if (st.size > MAX_ONNX_BYTES) throw new InputError(`${file}: ${st.size} bytes, more than an ONNX protobuf can hold (2 GiB)`);
  return decodeOnnx(fs.readFileSync(file), file);
}

export function decodeOnnx(bytes: Uint8Array, where: string): OnnxModel {
  return decodeModel(bytes, where);
}

/** An initializer's values as float32, after checking dims, dtype and data length against each other. */
export function tensorValues(t: OnnxTensor, where: string): { dims: number[]; values: Float32Array } {
  const w = `${where}: tensor "${t.name}"`;
  if (t.external) throw new InputError(`${w}: stored as external data, which is not supported (re-export with the weights inside the file)`);
  if (t.dims.length > 8) throw new InputError(`${w}: ${t.dims.length} dimensions`);
  let n = 1n;
  for (const d of t.dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new InputError(`${w}: bad dimension ${d}`);
    n *= BigInt(d);
  }
  // No tensor can hold more elements than the file has bytes (float_data is at least 4 bytes each).
  if (n > BigInt(MAX_ONNX_BYTES)) throw new InputError(`${w}: dims [${t.dims}] hold more elements than any ONNX file`);
  const numel = Number(n);
  const size = ({ [DataType.FLOAT]: 4, [DataType.FLOAT16]: 2, [DataType.BFLOAT16]: 2, [DataType.DOUBLE]: 8 } as Record<number, number>)[t.dataType];
  if (!size) throw new InputError(`${w}: data type ${t.dataType} (${dataTypeName(t.dataType)}) where a floating-point tensor is expected`);
  const typed = [t.floatData.length, t.int32Data.length, t.doubleData.length, t.int64Data.length].filter((x) => x > 0).length;
  if (t.raw && t.raw.length > 0 && typed > 0) throw new InputError(`${w}: has both raw_data and typed data`);
  // Every length is checked before the output is allocated: its size then never exceeds the file's.
  if (t.raw && (t.raw.length > 0 || numel === 0)) {
    if (t.raw.length !== numel * size) {
      throw new InputError(`${w}: dims [${t.dims}] of ${dataTypeName(t.dataType)} need ${numel * size} bytes, raw_data has ${t.raw.length}`);
    }
    const out = new Float32Array(numel);
    const v = new DataView(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength);
    for (let i = 0; i < numel; i++) {
      out[i] = size === 4 ? v.getFloat32(i * 4, true) : size === 8 ? v.getFloat64(i * 8, true)
        : half(v.getUint16(i * 2, true), t.dataType);
    }
    return { dims: t.dims, values: out };
  }
  const src: ArrayLike<number> = t.dataType === DataType.FLOAT ? t.floatData : t.dataType === DataType.DOUBLE ? t.doubleData : t.int32Data;
  if (src.length !== numel || typed > 1) {
    throw new InputError(`${w}: dims [${t.dims}] hold ${numel} values, the file stores ${src.length}`);
  }
  const out = new Float32Array(numel);
  for (let i = 0; i < numel; i++) out[i] = t.dataType === DataType.FLOAT16 || t.dataType === DataType.BFLOAT16 ? half(src[i] & 0xffff, t.dataType) : src[i];
  return { dims: t.dims, values: out };
}

const bits = new DataView(new ArrayBuffer(4));
function half(h: number, dt: number): number {
  if (dt === DataType.BFLOAT16) {
    bits.setUint32(0, h << 16, true);
    return bits.getFloat32(0, true);
  }
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function dataTypeName(dt: number): string {
  return Object.entries(DataType).find(([, v]) => v === dt)?.[0] ?? 'unknown';
}

function attr(n: OnnxNode, name: string): OnnxAttribute | undefined {
  return n.attributes.find((a) => a.name === name);
}

function intsAttr(n: OnnxNode, name: string, dflt: number[]): number[] {
  const a = attr(n, name);
  return a ? a.ints : dflt;
}

/**
 * Loads the weights of an ONNX file written by torch.onnx.export into a fresh `arch` (see the model
 * registry). Conv nodes are matched to our conv+BN pairs in graph order (the order of the forward
 * pass in both), each checked for kernel, stride, padding, dilation, groups and weight shape; the
 * single Gemm is the classifier. Returns the model (in eval mode) and what was found.
 */
export function importOnnxWithReport(file: string, arch: string, opts: ImportOnnxOptions = {}): { model: Backbone; report: ImportOnnxReport } {
  modelSpec(arch); // unknown architecture: an InputError before the file is read
  const onnx = readOnnx(file);
  const g = onnx.graph;
  const where = file;

  const inits = new Map<string, OnnxTensor>();
  for (const t of g.initializers) {
    if (inits.has(t.name)) throw new InputError(`${where}: initializer "${t.name}" appears twice`);
    inits.set(t.name, t);
  }
  // Constant nodes hold tensors too (torch writes Clip's bounds that way).
  const consts = new Map<string, OnnxTensor>(inits);
  const produced = new Set<string>([...inits.keys(), ...g.inputs.map((v) => v.name), '']);
  const consumers = new Map<string, OnnxNode[]>();
  g.nodes.forEach((n, i) => {
    for (const x of n.inputs) {
      // ONNX requires nodes in topological order; we rely on it to match convolutions in forward order.
      if (!produced.has(x)) throw new InputError(`${where}: node ${i} (${n.opType}) reads "${x}" before anything produces it`);
      if (!consumers.has(x)) consumers.set(x, []);
      consumers.get(x)!.push(n);
    }
    for (const o of n.outputs) produced.add(o);
    if (n.opType === 'Constant' && n.outputs.length === 1) {
      const v = attr(n, 'value');
      if (v?.t) consts.set(n.outputs[0], v.t);
    }
  });
  const dataInputs = g.inputs.filter((v) => !inits.has(v.name));
  if (dataInputs.length !== 1) throw new InputError(`${where}: expected one image input, found ${dataInputs.length} (${dataInputs.map((v) => v.name).join(', ')})`);
  const inp = dataInputs[0];
  if (inp.elemType !== null && inp.elemType !== DataType.FLOAT) throw new InputError(`${where}: input "${inp.name}" is ${dataTypeName(inp.elemType)}, expected FLOAT`);
  if (inp.shape && inp.shape.length !== 4) throw new InputError(`${where}: input "${inp.name}" has ${inp.shape.length} dimensions, expected [N, C, H, W]`);

  const values = (name: string, what: string, shape: number[]): Tensor => {
    const t = consts.get(name);
    if (!t) throw new InputError(`${where}: ${what} "${name}" is not a constant in the file`);
    const { dims, values: v } = tensorValues(t, where);
    if (dims.length !== shape.length || dims.some((d, i) => d !== shape[i])) {
      throw new InputError(`${where}: ${what} "${name}" has shape [${dims}], ${arch} expects [${shape}]`);
    }
    return fromTyped(v, 'float32', shape);
  };

  // The classifier first: its width decides the model's number of classes.
  const gemms = g.nodes.filter((n) => n.opType === 'Gemm' || n.opType === 'MatMul');
  if (gemms.length !== 1 || gemms[0].opType !== 'Gemm') {
    throw new InputError(`${where}: expected exactly one Gemm (the classifier), found ${gemms.map((n) => n.opType).join(', ') || 'none'}`);
  }
  const gemm = gemms[0];
  const transB = attr(gemm, 'transB')?.i ?? 0, transA = attr(gemm, 'transA')?.i ?? 0;
  const alpha = attr(gemm, 'alpha')?.f ?? 1, beta = attr(gemm, 'beta')?.f ?? 1;
  if (transA !== 0 || alpha !== 1 || beta !== 1 || gemm.inputs.length < 2) throw new InputError(`${where}: the classifier Gemm is not a plain linear layer (transA ${transA}, alpha ${alpha}, beta ${beta})`);
  const fcT = consts.get(gemm.inputs[1]);
  if (!fcT || fcT.dims.length !== 2) throw new InputError(`${where}: the classifier weight "${gemm.inputs[1]}" is not a 2-d constant`);
  const numClasses = transB ? fcT.dims[0] : fcT.dims[1];
  if (opts.numClasses !== undefined && opts.numClasses !== numClasses) {
    throw new InputError(`${where}: the classifier has ${numClasses} classes, ${opts.numClasses} were expected`);
  }
  if (!(numClasses >= 1 && numClasses <= 1e6)) throw new InputError(`${where}: the classifier has ${numClasses} classes`);

  const model = buildModel(arch, numClasses);
  try {
    const sd = new Map<string, Tensor>();
    const ours = model.stateDict();
    const report: ImportOnnxReport = {
      fused: 0, separate: 0, byName: 0, numClasses, producer: `${onnx.producerName} ${onnx.producerVersion}`.trim(),
      opset: onnx.opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0,
    };
    /** Where a name survived the export, it must be the one the graph points at. */
    const named = (onnxName: string, ourName: string) => {
      if (!ours.has(onnxName)) return;
      if (onnxName !== ourName) throw new InputError(`${where}: initializer "${onnxName}" feeds ${ourName} in the graph; names and graph disagree (not a ${arch}?)`);
      report.byName++;
    };

    const { module: fc, name: fcName } = model.classifier();
    let w = values(gemm.inputs[1], 'classifier weight', transB ? [numClasses, fc.inFeatures] : [fc.inFeatures, numClasses]);
    if (!transB) w = w.t().contiguous();
    named(gemm.inputs[1], `${fcName}.weight`);
    sd.set(`${fcName}.weight`, w);
    if (gemm.inputs[2]) {
      sd.set(`${fcName}.bias`, values(gemm.inputs[2], 'classifier bias', [numClasses]));
      named(gemm.inputs[2], `${fcName}.bias`);
    } else sd.set(`${fcName}.bias`, fromTyped(new Float32Array(numClasses), 'float32', [numClasses]));

    const convs = g.nodes.filter((n) => n.opType === 'Conv');
    const pairs = model.convBns();
    if (convs.length !== pairs.length) {
      throw new InputError(`${where}: ${convs.length} convolutions in the graph, ${arch} has ${pairs.length}`);
    }
    convs.forEach((node, i) => loadPair(node, pairs[i]));

    function loadPair(node: OnnxNode, p: ConvBn): void {
      const c = p.conv;
      const k = c.kernelSize, s = c.stride, pd = c.padding, dl = c.dilation;
      const at = `${where}: Conv node ${node.name || node.outputs[0]} (for ${p.convName})`;
      const check = (name: string, got: number[], want: number[]) => {
        if (got.length !== want.length || got.some((v, j) => v !== want[j])) throw new InputError(`${at}: ${name} [${got}], ${arch} has [${want}]`);
      };
      const autoPad = attr(node, 'auto_pad')?.s;
      if (autoPad && Buffer.from(autoPad).toString() !== 'NOTSET') throw new InputError(`${at}: auto_pad ${Buffer.from(autoPad).toString()} is not supported`);
      if (attr(node, 'kernel_shape')) check('kernel_shape', intsAttr(node, 'kernel_shape', []), [k, k]);
      check('strides', intsAttr(node, 'strides', [1, 1]), [s, s]);
      check('pads', intsAttr(node, 'pads', [0, 0, 0, 0]), [pd, pd, pd, pd]);
      check('dilations', intsAttr(node, 'dilations', [1, 1]), [dl, dl]);
      check('group', [attr(node, 'group')?.i ?? 1], [c.groups]);
      if (node.inputs.length < 2) throw new InputError(`${at}: no weight input`);
      sd.set(`${p.convName}.weight`, values(node.inputs[1], `weight of ${p.convName}`, c.weight.shape));
      named(node.inputs[1], `${p.convName}.weight`);
      const oc = c.outChannels;
      const convBias = node.inputs[2] ? values(node.inputs[2], `bias of ${p.convName}`, [oc]) : null;
      const next = consumers.get(node.outputs[0]) ?? [];
      const bnNode = next.length === 1 && next[0].opType === 'BatchNormalization' && next[0].inputs[0] === node.outputs[0] ? next[0] : null;
      const eps = p.bn.eps;
      const bn = p.bnName;
      if (bnNode) {
        const e = attr(bnNode, 'epsilon')?.f ?? 1e-5;
        // The attribute is a float32: compare at that precision.
        if (Math.abs(e - eps) > 1e-6 * eps) throw new InputError(`${where}: BatchNormalization after ${p.convName} has epsilon ${e}, ${arch} uses ${eps}`);
        if (bnNode.inputs.length !== 5) throw new InputError(`${where}: BatchNormalization after ${p.convName} has ${bnNode.inputs.length} inputs, expected 5`);
        const keys = ['weight', 'bias', 'running_mean', 'running_var'];
        keys.forEach((key, j) => {
          sd.set(`${bn}.${key}`, values(bnNode.inputs[j + 1], `${key} of ${bn}`, [oc]));
          named(bnNode.inputs[j + 1], `${bn}.${key}`);
        });
        // A conv bias before a BN (our convs have none) shifts the mean: BN(x + b) normalises x − (mean − b).
        if (convBias) sd.set(`${bn}.running_mean`, sd.get(`${bn}.running_mean`)!.sub(convBias));
        report.separate++;
      } else {
        // Eval-mode export folded BN into the conv: w' = w·γ/σ, b' = β − μ·γ/σ. The original γ, β, μ, σ
        // cannot be recovered, so our BN becomes the identity plus the folded bias: weight 1,
        // bias b', mean 0, var 1 − eps, so that var + eps = 1 and BN(x) = x + b' in evaluation.
        // (Training from here re-estimates the statistics, as it would anyway on a new task.)
        const bias = convBias ?? fromTyped(new Float32Array(oc), 'float32', [oc]);
        sd.set(`${bn}.weight`, fromTyped(new Float32Array(oc).fill(1), 'float32', [oc]));
        sd.set(`${bn}.bias`, bias);
        sd.set(`${bn}.running_mean`, fromTyped(new Float32Array(oc), 'float32', [oc]));
        sd.set(`${bn}.running_var`, fromTyped(new Float32Array(oc).fill(1 - eps), 'float32', [oc]));
        report.fused++;
      }
    }

    const missing = [...ours.keys()].filter((k) => !sd.has(k) && !k.endsWith('num_batches_tracked'));
    if (missing.length) throw new InputError(`${where}: nothing in the file for ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` (+${missing.length - 5})` : ''}`);
    model.loadStateDict(sd, false);
    for (const t of sd.values()) t.dispose();
    model.eval();
    return { model, report };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * Reads an ONNX file exported by torch.onnx.export from torchvision's resnet18/34/50 or mobilenet_v2
 * (any width) or from our CIFAR ResNets, and returns `buildModel(arch, classes)` with its weights
 * (classes from the file's classifier), in eval mode. Any problem with the file is an InputError.
 */
export function importOnnx(file: string, arch: string, opts: ImportOnnxOptions = {}): Backbone {
  return importOnnxWithReport(file, arch, opts).model;
}
