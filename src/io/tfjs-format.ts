import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import { JsonError, JsonValue, parseStrictJson } from './strict-json';
import { parseJsLiteral } from './js-literal';

/**
 * Reading a TF.js LayersModel (model JSON + weight shards) as data: the topology, and every weight
 * dequantised to float32. Two packagings: `model.json` with binary shards, and nsfwjs's, where the
 * model JSON is a minified object literal inside a JavaScript module and each shard a base64 string
 * inside another (`model.min.js`, `group1-shard1of1.min.js`). Files come from strangers: nothing is
 * evaluated, shard paths stay inside the model's folder, and every size the manifest declares is
 * checked against the bytes present before anything is allocated from it. All problems are one
 * InputError naming the file and, where there is one, the weight.
 */

/** The largest model JSON / JS file read (nsfwjs's is 0.1 MB; Keras topologies are rarely over a few MB). */
export const MAX_MODEL_FILE_BYTES = 64 << 20;
/** The most weight data a manifest may declare (1 GiB of float32 is 268 M parameters). */
export const MAX_WEIGHT_BYTES = 1 << 30;
const MAX_DIMS = 8;

export interface TfjsWeight {
  name: string;
  shape: number[];
  /** Dequantised values, row-major in the stored (Keras) layout. */
  data: Float32Array;
}

export interface KerasLayer {
  name: string;
  className: string;
  config: Map<string, JsonValue>;
  /** Names of the layers feeding this one (Keras 2 `inbound_nodes`; empty when not in that form). */
  inbound: string[];
}

export interface TfjsModel {
  /** The model file, for messages. */
  label: string;
  /** Keras layers in topology order, nested models flattened. */
  layers: KerasLayer[];
  /** Weights by their full manifest name (e.g. `Conv1/kernel`). */
  weights: Map<string, TfjsWeight>;
}

/** One weight group's declared entries and the raw bytes of its shards, concatenated. */
export interface TfjsRawGroup {
  specs: WeightSpec[];
  bytes: Uint8Array;
}

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool';
  quantization?: { dtype: 'uint8' | 'uint16' | 'float16'; min: number; scale: number };
  byteLength: number;
}

/** The model file parsed and its shards read, not yet decoded (what TF.js's IOHandler calls artifacts). */
export interface TfjsRaw {
  label: string;
  model: Map<string, JsonValue>;
  groups: TfjsRawGroup[];
}

const bad = (msg: string): never => { throw new InputError(msg); };
const quote = (s: string) => JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);

/** Fetches a shard's bytes by manifest path; `maxBytes` bounds what the caller may read. */
export type ShardReader = (shardPath: string, maxBytes: number) => Uint8Array;

/**
 * The module body a browserify-style wrapper (what nsfwjs ships) assigns to `module.exports`:
 * `{1:[function(e,a,n){a.exports=<literal>},{}]},{},[1])`. Only that single-module shape is accepted.
 */
function unwrapJsModule(text: string, label: string): JsonValue {
  const head = /\{\s*1\s*:\s*\[\s*function\s*\(\s*[A-Za-z_$][\w$]*\s*,\s*([A-Za-z_$][\w$]*)\s*,\s*[A-Za-z_$][\w$]*\s*\)\s*\{\s*\1\s*\.\s*exports\s*=/.exec(text);
  if (!head) return bad(`${label}: not a wrapped TF.js model module (no \`{1:[function(…){….exports=\` found)`);
  let parsed: { value: JsonValue; end: number };
  try {
    parsed = parseJsLiteral(text, head.index + head[0].length);
  } catch (e) {
    if (e instanceof JsonError) return bad(`${label}: the exported value is not a data literal: ${e.message}`);
    throw e;
  }
  if (!/^\s*;?\s*\}\s*,\s*\{\s*\}\s*\]\s*\}/.test(text.slice(parsed.end, parsed.end + 64))) {
    bad(`${label}: unexpected code after the exported literal (at character ${parsed.end})`);
  }
  return parsed.value;
}

function decodeText(bytes: Uint8Array, label: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return bad(`${label}: not valid UTF-8`);
  }
}

/** A model file's content as a JSON value: `kind` says whether it is plain JSON or a wrapped JS module. */
export function parseModelFile(bytes: Uint8Array, kind: 'json' | 'js', label: string): Map<string, JsonValue> {
  if (bytes.length > MAX_MODEL_FILE_BYTES) bad(`${label}: ${bytes.length} bytes, more than the ${MAX_MODEL_FILE_BYTES} allowed for a model file`);
  const text = decodeText(bytes, label);
  let v: JsonValue;
  if (kind === 'js') {
    v = unwrapJsModule(text, label);
  } else {
    try {
      v = parseStrictJson(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    } catch (e) {
      if (e instanceof JsonError) return bad(`${label}: invalid JSON: ${e.message}`);
      throw e;
    }
  }
  if (!(v instanceof Map)) return bad(`${label}: the model is not an object`);
  return v;
}

/** The base64 payload of a wrapped shard module (`….exports="…"`), decoded. */
export function unwrapJsShard(bytes: Uint8Array, label: string): Uint8Array {
  const text = decodeText(bytes, label);
  const v = unwrapJsModule(text, label);
  if (typeof v !== 'string') return bad(`${label}: the shard module does not export a string`);
  if (v.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) bad(`${label}: the shard is not valid base64`);
  const out = Buffer.from(v, 'base64');
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

function checkName(v: JsonValue | undefined, where: string): string {
  if (typeof v !== 'string' || v.length === 0) return bad(`${where}: name missing or not a string`);
  return v;
}

const QUANT_BYTES = { uint8: 1, uint16: 2, float16: 2 } as const;
const DTYPE_BYTES = { float32: 4, int32: 4, bool: 1 } as const;

function parseSpec(w: JsonValue, where: string): WeightSpec {
  if (!(w instanceof Map)) return bad(`${where}: entry is not an object`);
  const name = checkName(w.get('name'), where);
  const at = `${where} (weight ${quote(name)})`;
  const shape = w.get('shape');
  if (!Array.isArray(shape) || shape.length > MAX_DIMS || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    return bad(`${at}: shape must be a list of at most ${MAX_DIMS} non-negative integers, got ${quote(JSON.stringify(shape ?? null))}`);
  }
  const dtype = w.get('dtype') ?? 'float32';
  if (typeof dtype !== 'string' || !Object.prototype.hasOwnProperty.call(DTYPE_BYTES, dtype)) {
    return bad(`${at}: dtype ${quote(String(dtype))} is not supported (float32, int32, bool)`);
  }
  let count = 1;
  for (const d of shape as number[]) {
    count *= d;
    if (count > MAX_WEIGHT_BYTES) bad(`${at}: shape [${shape}] declares more than ${MAX_WEIGHT_BYTES} elements`);
  }
  const q = w.get('quantization');
  let quantization: WeightSpec['quantization'];
  let itemBytes: number = DTYPE_BYTES[dtype as keyof typeof DTYPE_BYTES];
  if (q !== undefined && q !== null) {
    if (!(q instanceof Map)) return bad(`${at}: quantization is not an object`);
    const qd = q.get('dtype');
    if (typeof qd !== 'string' || !Object.prototype.hasOwnProperty.call(QUANT_BYTES, qd)) {
      return bad(`${at}: quantization dtype ${quote(String(qd))} is not supported (uint8, uint16, float16)`);
    }
    if (dtype !== 'float32') bad(`${at}: quantised ${dtype} weights are not supported`);
    const min = q.get('min'), scale = q.get('scale');
    const finite = (x: JsonValue | undefined): x is number => typeof x === 'number' && Number.isFinite(x);
    if (qd !== 'float16' && !(finite(min) && finite(scale))) bad(`${at}: ${qd} quantization needs finite numbers min and scale`);
    quantization = { dtype: qd as 'uint8' | 'uint16' | 'float16', min: finite(min) ? min : 0, scale: finite(scale) ? scale : 1 };
    itemBytes = QUANT_BYTES[quantization.dtype];
  }
  return { name, shape: shape as number[], dtype: dtype as WeightSpec['dtype'], quantization, byteLength: count * itemBytes };
}

/** A manifest path that cannot leave the model's folder. */
function checkShardPath(p: JsonValue, where: string): string {
  if (typeof p !== 'string' || p.length === 0 || p.length > 1000) return bad(`${where}: shard path must be a non-empty string`);
  const parts = p.split('/');
  if (p.startsWith('/') || p.includes('\\') || p.includes('\0') || /^[A-Za-z]:/.test(p) || /^[a-z][a-z0-9+.-]*:/i.test(p)
    || parts.some((s) => s === '' || s === '.' || s === '..')) {
    bad(`${where}: shard path ${quote(p)} must be a plain relative path inside the model's folder`);
  }
  return p;
}

/** Parses the model file's manifest and reads every shard, checking declared sizes against the bytes. */
export function readRaw(model: Map<string, JsonValue>, readShard: ShardReader, label: string): TfjsRaw {
  const format = model.get('format');
  if (format !== undefined && format !== 'layers-model') bad(`${label}: format ${quote(String(format))} is not a TF.js LayersModel (graph models are not supported)`);
  const manifest = model.get('weightsManifest');
  if (!Array.isArray(manifest)) return bad(`${label}: weightsManifest missing or not a list`);
  let total = 0;
  const names = new Set<string>();
  const plans = manifest.map((g, gi) => {
    const where = `${label}: weightsManifest[${gi}]`;
    if (!(g instanceof Map)) return bad(`${where}: group is not an object`);
    const paths = g.get('paths'), weights = g.get('weights');
    if (!Array.isArray(paths) || !Array.isArray(weights)) return bad(`${where}: group needs lists "paths" and "weights"`);
    const specs = weights.map((w, wi) => parseSpec(w, `${where}.weights[${wi}]`));
    let bytes = 0;
    for (const s of specs) {
      if (names.has(s.name)) bad(`${where}: weight ${quote(s.name)} appears twice`);
      names.add(s.name);
      bytes += s.byteLength;
      total += s.byteLength;
      if (total > MAX_WEIGHT_BYTES) bad(`${where} (weight ${quote(s.name)}): the manifest declares more than ${MAX_WEIGHT_BYTES} bytes of weights`);
    }
    if (bytes > 0 && paths.length === 0) bad(`${where}: ${bytes} bytes of weights but no shard paths`);
    return { specs, bytes, paths: paths.map((p, pi) => checkShardPath(p, `${where}.paths[${pi}]`)) };
  });
  const groups = plans.map(({ specs, bytes, paths }, gi) => {
    const parts: Uint8Array[] = [];
    let have = 0;
    for (const p of paths) {
      const part = readShard(p, bytes - have);
      have += part.length;
      if (have > bytes) bad(`${label}: shard ${quote(p)} of weight group ${gi} holds more bytes than its ${specs.length} weights need (${bytes})`);
      parts.push(part);
    }
    if (have !== bytes) {
      // Name the first weight that the data does not cover, the one a truncation cut.
      let off = 0;
      const cut = specs.find((s) => (off += s.byteLength) > have);
      bad(`${label}: weight group ${gi} (${paths.map(quote).join(', ')}) has ${have} bytes in its shards but its weights need ${bytes}${cut ? ` (weight ${quote(cut.name)} is cut off)` : ''}`);
    }
    return { specs, bytes: parts.length === 1 ? parts[0] : new Uint8Array(Buffer.concat(parts)) };
  });
  return { label, model, groups };
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** Dequantises one weight the way tfjs-core does (value = q·scale + min, computed in double). */
function decodeWeight(s: WeightSpec, bytes: Uint8Array, offset: number, label: string): Float32Array {
  const count = s.byteLength / (s.quantization ? QUANT_BYTES[s.quantization.dtype] : DTYPE_BYTES[s.dtype]);
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, s.byteLength);
  const out = new Float32Array(count);
  const q = s.quantization;
  if (q?.dtype === 'uint8') {
    for (let i = 0; i < count; i++) out[i] = view.getUint8(i) * q.scale + q.min;
  } else if (q?.dtype === 'uint16') {
    for (let i = 0; i < count; i++) out[i] = view.getUint16(2 * i, true) * q.scale + q.min;
  } else if (q?.dtype === 'float16') {
    for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
  } else if (s.dtype === 'float32') {
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  } else if (s.dtype === 'int32') {
    for (let i = 0; i < count; i++) out[i] = view.getInt32(4 * i, true);
  } else {
    for (let i = 0; i < count; i++) {
      const b = view.getUint8(i);
      if (b > 1) bad(`${label}: weight ${quote(s.name)} is bool but holds byte ${b} at element ${i}`);
      out[i] = b;
    }
  }
  return out;
}

function parseLayers(topology: JsonValue | undefined, label: string, depth = 0): KerasLayer[] {
  if (!(topology instanceof Map)) return bad(`${label}: modelTopology missing or not an object`);
  // Converter output wraps the Keras config in model_config; tfjs-layers' own save does not.
  const cfg = topology.get('model_config') ?? topology;
  if (!(cfg instanceof Map)) return bad(`${label}: model_config is not an object`);
  const cls = cfg.get('class_name');
  if (cls !== 'Model' && cls !== 'Functional' && cls !== 'Sequential') {
    return bad(`${label}: model class ${quote(String(cls))} is not supported (Model, Functional, Sequential)`);
  }
  const inner = cfg.get('config');
  const list = Array.isArray(inner) ? inner : inner instanceof Map ? inner.get('layers') : undefined;
  if (!Array.isArray(list)) return bad(`${label}: the model config has no list of layers`);
  const out: KerasLayer[] = [];
  list.forEach((l, i) => {
    const where = `${label}: layer ${i}`;
    if (!(l instanceof Map)) return bad(`${where} is not an object`);
    const className = l.get('class_name');
    if (typeof className !== 'string') return bad(`${where}: class_name missing`);
    const config = l.get('config');
    if (!(config instanceof Map)) return bad(`${where}: config missing`);
    if (className === 'Model' || className === 'Functional' || className === 'Sequential') {
      if (depth >= 4) bad(`${where}: models nested more than 4 deep`);
      out.push(...parseLayers(l, label, depth + 1));
      return undefined;
    }
    const name = l.get('name') ?? config.get('name');
    if (typeof name !== 'string') return bad(`${where}: name missing`);
    const inbound: string[] = [];
    const nodes = l.get('inbound_nodes');
    if (Array.isArray(nodes)) {
      for (const node of nodes) {
        if (!Array.isArray(node)) continue;
        for (const t of node) if (Array.isArray(t) && typeof t[0] === 'string') inbound.push(t[0]);
      }
    }
    out.push({ name, className, config, inbound });
    return undefined;
  });
  return out;
}

/** Decodes read artifacts: topology and float32 weights. */
export function decodeRaw(raw: TfjsRaw): TfjsModel {
  const layers = parseLayers(raw.model.get('modelTopology'), raw.label);
  const seen = new Set<string>();
  for (const l of layers) {
    if (seen.has(l.name)) bad(`${raw.label}: two layers are named ${quote(l.name)}`);
    seen.add(l.name);
  }
  const weights = new Map<string, TfjsWeight>();
  for (const g of raw.groups) {
    let offset = 0;
    for (const s of g.specs) {
      weights.set(s.name, { name: s.name, shape: s.shape, data: decodeWeight(s, g.bytes, offset, raw.label) });
      offset += s.byteLength;
    }
  }
  return { label: raw.label, layers, weights };
}

function statRegular(file: string, label: string): fs.Stats {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    return bad(`${label}: cannot read: ${(e as Error).message}`);
  }
  if (!st.isFile()) bad(`${label}: not a regular file`);
  return st;
}

function readBounded(file: string, maxBytes: number, label: string, what: string): Uint8Array {
  const st = statRegular(file, label);
  if (st.size > maxBytes) bad(`${label}: ${st.size} bytes, more than the ${maxBytes} ${what}`);
  return new Uint8Array(fs.readFileSync(file));
}

/**
 * Where the model file is: a folder (its `model.json`, else `model.min.js`), a `.json` file or a
 * wrapped `.js` module.
 */
export function locateModelFile(p: string): { file: string; kind: 'json' | 'js' } {
  if (fs.existsSync(p) && fs.statSync(p).isDirectory()) {
    for (const [name, kind] of [['model.json', 'json'], ['model.min.js', 'js'], ['model.js', 'js']] as const) {
      if (fs.existsSync(path.join(p, name))) return { file: path.join(p, name), kind };
    }
    return bad(`${p}: no model.json or model.min.js in this folder`);
  }
  return { file: p, kind: /\.js$/i.test(p) ? 'js' : 'json' };
}

/** Reads the model file and its shards (from the model file's folder), unchecked beyond sizes and paths. */
export function readTfjsRaw(p: string): TfjsRaw {
  const { file, kind } = locateModelFile(p);
  const model = parseModelFile(readBounded(file, MAX_MODEL_FILE_BYTES, file, 'allowed for a model file'), kind, file);
  const dir = path.dirname(file);
  const readShard: ShardReader = (shardPath, maxBytes) => {
    const base = path.join(dir, ...shardPath.split('/'));
    if (kind === 'json') return readBounded(base, maxBytes, base, 'its weights still need');
    // The wrapped variant names shards without the .min.js its files carry.
    const js = [`${base}.min.js`, `${base}.js`, base].find((f) => fs.existsSync(f)) ?? `${base}.min.js`;
    // base64 is 4/3 of the data, plus the wrapper's code.
    return unwrapJsShard(readBounded(js, Math.ceil(maxBytes / 3) * 4 + (64 << 10), js, 'its base64 weights need'), js);
  };
  return readRaw(model, readShard, file);
}

/** Reads and decodes a TF.js LayersModel from a folder, a `model.json` or a wrapped `model.min.js`. */
export function readTfjsModel(p: string): TfjsModel {
  return decodeRaw(readTfjsRaw(p));
}

/** A parsed JSON value with Maps turned back into plain objects (for handing artifacts to TF.js). */
export function toPlain(v: JsonValue): unknown {
  if (v instanceof Map) {
    const o: Record<string, unknown> = {};
    // defineProperty, so a key named __proto__ stays an ordinary key.
    for (const [k, x] of v) Object.defineProperty(o, k, { value: toPlain(x), enumerable: true, writable: true, configurable: true });
    return o;
  }
  return Array.isArray(v) ? v.map(toPlain) : v;
}
