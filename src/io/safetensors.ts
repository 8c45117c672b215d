/**
 * safetensors files (https://github.com/huggingface/safetensors): 8-byte little-endian header length
 * N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {str: str}},
 * then the raw little-endian tensor data, offsets relative to its start.
 *
 * The reader is for files from strangers: it never executes anything, validates the whole header
 * against the file size before reading any tensor data (every offset, length, dtype and shape; no
 * overlaps, gaps or trailing bytes; header length within the file and under 100 MB; strict JSON,
 * no duplicate keys), allocates nothing sized by the file before that check, and reports any problem
 * as one InputError naming the file and what is wrong.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { Tensor } from '../engine/tensor';
import { DType, isFloating } from '../engine/dtype';
import { fromTyped } from '../engine/creation';
import { noGrad } from '../engine/autograd';
import { Module, StateDict } from '../nn/module';
import { InputError } from '../errors';
import { writeChunksAtomic } from './atomic';
import { JsonError, JsonValue, parseStrictJson } from './strict-json';
import { mapNames, NameConvention } from './names';

/** The largest header accepted (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;
const MAX_DIMS = 32;

const DTYPES: Record<string, { dtype: DType; size: number }> = {
  F64: { dtype: 'float64', size: 8 }, F32: { dtype: 'float32', size: 4 }, F16: { dtype: 'float16', size: 2 },
  BF16: { dtype: 'bfloat16', size: 2 }, I64: { dtype: 'int64', size: 8 }, I32: { dtype: 'int32', size: 4 },
  I16: { dtype: 'int16', size: 2 }, I8: { dtype: 'int8', size: 1 }, U8: { dtype: 'uint8', size: 1 }, BOOL: { dtype: 'bool', size: 1 },
};
const KNOWN_UNSUPPORTED = new Set(['U16', 'U32', 'U64', 'C64', 'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F6_E2M3', 'F6_E3M2', 'F4']);
const CODE_OF: Partial<Record<DType, string>> = Object.fromEntries(Object.entries(DTYPES).map(([k, v]) => [v.dtype, k]));

export interface SafetensorsEntry {
  name: string;
  /** The file's dtype code (F32, BF16, …) and the engine dtype it loads as. */
  code: string;
  dtype: DType;
  shape: number[];
  /** Byte range within the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Entries in the header's order. */
  entries: SafetensorsEntry[];
  metadata: Record<string, string> | null;
  /** File offset of the data section (8 + header length). */
  dataStart: number;
  fileSize: number;
}

/** Random access to the bytes of a file or of a buffer. */
interface ByteSource {
  label: string;
  size: number;
  read(position: number, length: number): Uint8Array;
  close(): void;
}

function bufferSource(bytes: Uint8Array, label: string): ByteSource {
  return {
    label, size: bytes.byteLength,
    read: (p, l) => bytes.subarray(p, p + l),
    close: () => {},
  };
}

function fileSource(file: string): ByteSource {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new InputError(`${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new InputError(`${file}: not a regular file`);
    return {
      label: file, size: st.size,
      read(position, length) {
        const buf = Buffer.allocUnsafe(length);
        let got = 0;
        while (got < length) {
          const n = fs.readSync(fd, buf, got, length - got, position + got);
          if (n === 0) throw new InputError(`${file}: the file became shorter while being read`);
          got += n;
        }
        return buf;
      },
      close: () => fs.closeSync(fd),
    };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

const quote = (name: string): string => JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);

/** Validates the header of `src` against its size; returns entries with checked byte ranges. */
function readHeader(src: ByteSource): SafetensorsHeader {
  const bad = (msg: string): never => { throw new InputError(`${src.label}: ${msg}`); };
  if (os.endianness() !== 'LE') bad('safetensors data is little-endian; this machine is not');
  const size = src.size;
  if (size < 8) bad(`too short for a safetensors file (${size} bytes; the header length alone takes 8)`);
  const lenBytes = src.read(0, 8);
  const n64 = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 === 0n) bad('the header is empty (length 0)');
  if (n64 > BigInt(size - 8)) bad(`header length ${n64} runs past the end of the file (${size} bytes)`);
  if (n64 > BigInt(MAX_HEADER_BYTES)) bad(`header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const n = Number(n64);
  const dataStart = 8 + n;
  const dataLen = size - dataStart;

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(src.read(8, n));
  } catch (e) {
    if (e instanceof InputError) throw e;
    return bad('the header is not valid UTF-8');
  }
  if (text[0] !== '{') bad('the header is not a JSON object (it must start with "{")');
  let json: JsonValue;
  try {
    json = parseStrictJson(text, 8);
  } catch (e) {
    if (e instanceof JsonError) bad(`the header is not valid JSON: ${e.message}`);
    throw e;
  }
  if (!(json instanceof Map)) return bad('the header is not a JSON object');

  let metadata: Record<string, string> | null = null;
  const entries: SafetensorsEntry[] = [];
  for (const [name, v] of json) {
    if (name === '__metadata__') {
      if (!(v instanceof Map)) bad('__metadata__ is not an object');
      metadata = {};
      for (const [k, s] of v as Map<string, JsonValue>) {
        if (typeof s !== 'string') bad(`__metadata__ value ${quote(k)} is not a string`);
        Object.defineProperty(metadata, k, { value: s, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    const where = `tensor ${quote(name)}`;
    if (!(v instanceof Map)) return bad(`${where}: entry is not an object`);
    const code = v.get('dtype');
    if (typeof code !== 'string') return bad(`${where}: dtype missing or not a string`);
    const dt = Object.prototype.hasOwnProperty.call(DTYPES, code) ? DTYPES[code] : undefined;
    if (!dt) {
      bad(`${where}: ${KNOWN_UNSUPPORTED.has(code) ? `dtype ${code} is not supported here` : `unknown dtype ${quote(code)}`} (supported: ${Object.keys(DTYPES).join(', ')})`);
    }
    const { dtype, size: itemSize } = dt!;
    const shape = v.get('shape');
    if (!Array.isArray(shape)) return bad(`${where}: shape missing or not an array`);
    if (shape.length > MAX_DIMS) bad(`${where}: ${shape.length} dimensions (at most ${MAX_DIMS})`);
    if (!shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
      bad(`${where}: shape ${JSON.stringify(shape).slice(0, 100)} is not a list of non-negative integers`);
    }
    const offsets = v.get('data_offsets');
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
      return bad(`${where}: data_offsets must be [begin, end] with non-negative integers`);
    }
    const [begin, end] = offsets as number[];
    if (begin > end) bad(`${where}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLen) bad(`${where}: data_offsets [${begin}, ${end}] run past the end of the data section (${dataLen} bytes)`);
    const bytes = (shape as number[]).reduce((a, d) => a * BigInt(d), BigInt(itemSize));
    if (bytes !== BigInt(end - begin)) {
      bad(`${where}: shape [${shape}] of ${code} needs ${bytes} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
    }
    entries.push({ name, code, dtype, shape: shape as number[], begin, end });
  }

  // The data section must be tiled exactly: no overlaps, no gaps, nothing left over.
  const sorted = entries.map((e, i) => ({ e, i })).sort((a, b) => a.e.begin - b.e.begin || a.e.end - b.e.end || a.i - b.i);
  let expected = 0;
  let prev: SafetensorsEntry | null = null;
  for (const { e } of sorted) {
    if (e.begin < expected) bad(`tensor ${quote(e.name)} (bytes ${e.begin}–${e.end}) overlaps tensor ${quote(prev!.name)} (bytes ${prev!.begin}–${prev!.end})`);
    if (e.begin > expected) bad(`${e.begin - expected} bytes before tensor ${quote(e.name)} (from ${expected}) belong to no tensor`);
    expected = e.end;
    if (e.end > e.begin) prev = e;
  }
  if (expected !== dataLen) bad(`${dataLen - expected} bytes at the end of the data section belong to no tensor`);
  return { entries, metadata, dataStart, fileSize: size };
}

function readEntry(src: ByteSource, h: SafetensorsHeader, e: SafetensorsEntry): Tensor {
  const bytes = src.read(h.dataStart + e.begin, e.end - e.begin);
  if (e.dtype === 'bool') {
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] > 1) throw new InputError(`${src.label}: tensor ${quote(e.name)} is BOOL but holds byte ${bytes[i]} at element ${i}`);
    }
  }
  return fromTyped(bytes, e.dtype, e.shape);
}

function withSource<T>(src: ByteSource, fn: (src: ByteSource) => T): T {
  try {
    return fn(src);
  } finally {
    src.close();
  }
}

function readAll(src: ByteSource, names?: Set<string>): { tensors: Map<string, Tensor>; header: SafetensorsHeader } {
  const header = readHeader(src);
  const tensors = new Map<string, Tensor>();
  try {
    for (const e of header.entries) if (!names || names.has(e.name)) tensors.set(e.name, readEntry(src, header, e));
  } catch (err) {
    for (const t of tensors.values()) t.dispose();
    throw err;
  }
  return { tensors, header };
}

/** The validated header of a file, without reading tensor data. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  return withSource(fileSource(file), readHeader);
}

/** Every tensor of a file, by name in the header's order (the caller owns and disposes them). */
export function loadSafetensors(file: string): Map<string, Tensor> {
  return withSource(fileSource(file), (s) => readAll(s).tensors);
}

/** The same from bytes in memory; `label` names the source in errors. */
export function decodeSafetensors(bytes: Uint8Array, label = '<buffer>'): { tensors: Map<string, Tensor>; metadata: Record<string, string> | null } {
  const { tensors, header } = readAll(bufferSource(bytes, label));
  return { tensors, metadata: header.metadata };
}

// ---------------------------------------------------------------------------------------------
// Writing

type TensorSource = Module | StateDict | Record<string, Tensor>;

function tensorsOf(source: TensorSource): [string, Tensor][] {
  if (source instanceof Module) return [...source.stateDict()];
  return source instanceof Map ? [...source] : Object.entries(source);
}

function layout(items: [string, Tensor][], metadata?: Record<string, string>): { header: Buffer; codes: string[] } {
  const obj: Record<string, unknown> = {};
  if (metadata) obj.__metadata__ = metadata;
  let offset = 0;
  const codes: string[] = [];
  for (const [name, t] of items) {
    if (name === '__metadata__') throw new InputError('a tensor cannot be named __metadata__ in a safetensors file');
    const code = CODE_OF[t.dtype];
    if (!code) throw new InputError(`tensor '${name}': dtype ${t.dtype} cannot be written to safetensors`);
    const bytes = t.numel * DTYPES[code].size;
    Object.defineProperty(obj, name, { value: { dtype: code, shape: t.shape, data_offsets: [offset, offset + bytes] }, enumerable: true });
    codes.push(code);
    offset += bytes;
  }
  let json = JSON.stringify(obj);
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  const len = Buffer.byteLength(json);
  json += ' '.repeat((8 - (len % 8)) % 8);
  const body = Buffer.from(json, 'utf8');
  const header = Buffer.alloc(8 + body.length);
  header.writeBigUInt64LE(BigInt(body.length), 0);
  body.copy(header, 8);
  return { header, codes };
}

function bytesOf(t: Tensor): Uint8Array {
  const d = noGrad(() => t.data());
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** A safetensors file's bytes in memory. */
export function encodeSafetensors(source: TensorSource, metadata?: Record<string, string>): Buffer {
  const items = tensorsOf(source);
  const { header } = layout(items, metadata);
  return Buffer.concat([header, ...items.map(([, t]) => bytesOf(t))]);
}

/**
 * Writes a module's state dict (or named tensors) as safetensors, atomically: a temporary file in
 * the same folder, fsync, then rename over `file`.
 */
export function saveSafetensors(source: TensorSource, file: string, metadata?: Record<string, string>): void {
  const items = tensorsOf(source);
  const { header } = layout(items, metadata);
  // Tensors are copied out one at a time as the file is written, not all at once.
  writeChunksAtomic(file, (function* () {
    yield header;
    for (const [, t] of items) yield bytesOf(t);
  })());
}

// ---------------------------------------------------------------------------------------------
// Loading into a model

export interface LoadIntoOptions {
  /** Name convention of the file: 'auto' (default: detected), 'torchvision', 'timm'. */
  from?: NameConvention;
  /** Leave the model's classifier as it is and ignore the file's (a new task with other classes). */
  skipClassifier?: boolean;
  /** Every model entry must be in the file and every file entry in the model (default true). */
  strict?: boolean;
}

export interface LoadIntoResult {
  /** Model names that were loaded. */
  loaded: string[];
  /** Model names the file lacked (only num_batches_tracked in strict mode). */
  missing: string[];
  /** File names that matched nothing in the model (empty in strict mode). */
  unexpected: string[];
}

function list(names: string[]): string {
  return names.slice(0, 5).join(', ') + (names.length > 5 ? ` (+${names.length - 5} more)` : '');
}

/**
 * Loads a safetensors file into a model: names are mapped (torchvision / timm, a 'module.' prefix
 * removed), then every name, shape and dtype kind is checked against the model before any data is
 * read; one InputError names the file and all mismatches. BatchNorm's num_batches_tracked may be
 * absent. Floating data of another precision (F16, BF16, F64) is converted to the model's dtype.
 */
export function loadInto(model: Module, file: string, opts: LoadIntoOptions = {}): LoadIntoResult {
  const strict = opts.strict ?? true;
  return withSource(fileSource(file), (src) => {
    const header = readHeader(src);
    const bad = (msg: string): never => { throw new InputError(`${file}: ${msg}`); };
    const own = model.stateDict();
    const head = opts.skipClassifier ? classifierPrefix(model) : null;
    const inHead = (n: string) => head !== null && n.startsWith(head);
    const names = mapNames(header.entries.map((e) => e.name), model, opts.from ?? 'auto');

    const chosen = new Map<string, SafetensorsEntry>(); // model name → file entry
    const unexpected: string[] = [];
    const problems: string[] = [];
    for (const e of header.entries) {
      const target = names.get(e.name)!;
      if (inHead(target)) continue;
      const t = own.get(target);
      if (!t) { unexpected.push(e.name); continue; }
      if (chosen.has(target)) { problems.push(`'${chosen.get(target)!.name}' and '${e.name}' both map to '${target}'`); continue; }
      const want = t.shape;
      if (want.length !== e.shape.length || want.some((d, i) => d !== e.shape[i])) {
        problems.push(`'${e.name}' has shape [${e.shape}], the model's '${target}' is [${want}]`);
      } else if (isFloating(t.dtype) !== isFloating(e.dtype) || (t.dtype === 'bool') !== (e.dtype === 'bool')) {
        problems.push(`'${e.name}' is ${e.code}, the model's '${target}' is ${t.dtype}`);
      }
      chosen.set(target, e);
    }
    const missing = [...own.keys()].filter((k) => !chosen.has(k) && !inHead(k));
    const missingHard = missing.filter((k) => !k.endsWith('num_batches_tracked'));
    if (strict && missingHard.length) problems.push(`missing ${list(missingHard)}`);
    if (strict && unexpected.length) problems.push(`unexpected ${list(unexpected)}`);
    if (problems.length) bad(`does not match the model: ${problems.join('; ')}`);
    if (chosen.size === 0) bad('no tensor in the file matches the model');

    const loaded = new Map<string, Tensor>();
    try {
      for (const [target, e] of chosen) loaded.set(target, readEntry(src, header, e));
      model.loadStateDict(loaded, false);
    } catch (err) {
      if (err instanceof InputError && !err.message.startsWith(file)) throw new InputError(`${file}: ${err.message}`);
      throw err;
    } finally {
      for (const t of loaded.values()) t.dispose();
    }
    return { loaded: [...chosen.keys()], missing, unexpected };
  });
}

/** State-dict prefix of the model's classifier ('fc.', 'classifier.1.'), when it says. */
function classifierPrefix(model: Module): string | null {
  const c = (model as unknown as { classifier?: () => { name: string } }).classifier;
  if (typeof c !== 'function') throw new InputError('skipClassifier: this model does not say which layer is its classifier');
  return `${c.call(model).name}.`;
}
