/**
 * The part of onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
 * ValueInfoProto) that export writes and import reads, with the field numbers of onnx.proto.
 * Fields we do not use are skipped when reading (as protobuf requires), never interpreted.
 */
import { InputError } from '../../errors';
import {
  decodeString, Field, float32FromBits, forEachFixed32, forEachFixed64, forEachVarint, int64, ProtoReader, ProtoWriter, WireType,
} from './proto';

export const DataType = {
  FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9,
  FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, COMPLEX64: 14, COMPLEX128: 15, BFLOAT16: 16,
} as const;

export const AttrType = {
  UNDEFINED: 0, FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8, TENSORS: 9, GRAPHS: 10,
} as const;

/** A TensorProto as stored: the data stays a view into the file until someone asks for values. */
export interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: number;
  raw: Uint8Array | null;
  floatData: number[];
  int32Data: number[];
  int64Data: bigint[];
  doubleData: number[];
  /** data_location EXTERNAL or external_data entries present. */
  external: boolean;
}

export interface OnnxAttribute {
  name: string;
  type: number;
  f: number | null;
  i: number | null;
  s: Uint8Array | null;
  t: OnnxTensor | null;
  g: OnnxGraph | null;
  floats: number[];
  ints: number[];
  strings: Uint8Array[];
  tensors: OnnxTensor[];
  graphs: OnnxGraph[];
}

export interface OnnxNode {
  inputs: string[];
  outputs: string[];
  name: string;
  opType: string;
  domain: string;
  attributes: OnnxAttribute[];
}

/** A graph input or output: element type and shape (numbers, symbolic names, or null if unknown). */
export interface OnnxValueInfo {
  name: string;
  elemType: number | null;
  shape: (number | string | null)[] | null;
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
}

export interface OnnxModel {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producerName: string;
  producerVersion: string;
  graph: OnnxGraph;
}

/** Subgraphs (If / Loop bodies) may nest; a hostile file must not be able to exhaust the stack. */
export const MAX_GRAPH_DEPTH = 8;

// ---------------------------------------------------------------------------------------------
// Reading

function expectWire(f: Field, wire: WireType, where: string): void {
  if (f.wire !== wire) throw new InputError(`${where}: field ${f.num} has wire type ${f.wire}, expected ${wire}`);
}

function str(f: Field, where: string): string {
  expectWire(f, WireType.Len, where);
  return decodeString(f.bytes, where);
}

function num(f: Field, where: string): number {
  expectWire(f, WireType.Varint, where);
  return int64(f.int);
}

export function decodeModel(buf: Uint8Array, where: string): OnnxModel {
  const r = new ProtoReader(buf, where);
  const m: OnnxModel = { irVersion: 0, opsets: [], producerName: '', producerVersion: '', graph: emptyGraph() };
  let sawGraph = false;
  while (!r.done) {
    const f = r.next();
    switch (f.num) {
      case 1: m.irVersion = num(f, where); break;
      case 2: m.producerName = str(f, where); break;
      case 3: m.producerVersion = str(f, where); break;
      case 7: expectWire(f, WireType.Len, where); m.graph = decodeGraph(f.bytes, `${where}: graph`, 1); sawGraph = true; break;
      case 8: {
        expectWire(f, WireType.Len, where);
        const o = { domain: '', version: 0 };
        const rr = new ProtoReader(f.bytes, `${where}: opset_import`);
        while (!rr.done) {
          const g = rr.next();
          if (g.num === 1) o.domain = str(g, where);
          else if (g.num === 2) o.version = num(g, where);
        }
        m.opsets.push(o);
        break;
      }
      default: break;
    }
  }
  if (!sawGraph) throw new InputError(`${where}: not an ONNX model (no graph)`);
  return m;
}

function emptyGraph(): OnnxGraph {
  return { name: '', nodes: [], initializers: [], inputs: [], outputs: [] };
}

function decodeGraph(buf: Uint8Array, where: string, depth: number): OnnxGraph {
  if (depth > MAX_GRAPH_DEPTH) throw new InputError(`${where}: subgraphs nested deeper than ${MAX_GRAPH_DEPTH}`);
  const r = new ProtoReader(buf, where);
  const g = emptyGraph();
  while (!r.done) {
    const f = r.next();
    switch (f.num) {
      case 1: expectWire(f, WireType.Len, where); g.nodes.push(decodeNode(f.bytes, `${where}: node ${g.nodes.length}`, depth)); break;
      case 2: g.name = str(f, where); break;
      case 5: expectWire(f, WireType.Len, where); g.initializers.push(decodeTensor(f.bytes, `${where}: initializer ${g.initializers.length}`)); break;
      case 11: expectWire(f, WireType.Len, where); g.inputs.push(decodeValueInfo(f.bytes, `${where}: input`)); break;
      case 12: expectWire(f, WireType.Len, where); g.outputs.push(decodeValueInfo(f.bytes, `${where}: output`)); break;
      default: break;
    }
  }
  return g;
}

function decodeNode(buf: Uint8Array, where: string, depth: number): OnnxNode {
  const r = new ProtoReader(buf, where);
  const n: OnnxNode = { inputs: [], outputs: [], name: '', opType: '', domain: '', attributes: [] };
  while (!r.done) {
    const f = r.next();
    switch (f.num) {
      case 1: n.inputs.push(str(f, where)); break;
      case 2: n.outputs.push(str(f, where)); break;
      case 3: n.name = str(f, where); break;
      case 4: n.opType = str(f, where); break;
      case 5: expectWire(f, WireType.Len, where); n.attributes.push(decodeAttribute(f.bytes, `${where}: attribute`, depth)); break;
      case 7: n.domain = str(f, where); break;
      default: break;
    }
  }
  return n;
}

function decodeAttribute(buf: Uint8Array, where: string, depth: number): OnnxAttribute {
  const r = new ProtoReader(buf, where);
  const a: OnnxAttribute = { name: '', type: 0, f: null, i: null, s: null, t: null, g: null, floats: [], ints: [], strings: [], tensors: [], graphs: [] };
  while (!r.done) {
    const f = r.next();
    switch (f.num) {
      case 1: a.name = str(f, where); break;
      case 2: expectWire(f, WireType.I32, where); a.f = float32FromBits(f.i32); break;
      case 3: a.i = num(f, where); break;
      case 4: expectWire(f, WireType.Len, where); a.s = f.bytes; break;
      case 5: expectWire(f, WireType.Len, where); a.t = decodeTensor(f.bytes, `${where} ${a.name}`); break;
      case 6: expectWire(f, WireType.Len, where); a.g = decodeGraph(f.bytes, `${where} ${a.name}`, depth + 1); break;
      case 7: forEachFixed32(f, where, (b) => a.floats.push(float32FromBits(b))); break;
      case 8: forEachVarint(f, where, (v) => a.ints.push(int64(v))); break;
      case 9: expectWire(f, WireType.Len, where); a.strings.push(f.bytes); break;
      case 10: expectWire(f, WireType.Len, where); a.tensors.push(decodeTensor(f.bytes, `${where} ${a.name}`)); break;
      case 11: expectWire(f, WireType.Len, where); a.graphs.push(decodeGraph(f.bytes, `${where} ${a.name}`, depth + 1)); break;
      case 20: a.type = num(f, where); break;
      default: break;
    }
  }
  return a;
}

export function decodeTensor(buf: Uint8Array, where: string): OnnxTensor {
  const r = new ProtoReader(buf, where);
  const t: OnnxTensor = { name: '', dims: [], dataType: 0, raw: null, floatData: [], int32Data: [], int64Data: [], doubleData: [], external: false };
  while (!r.done) {
    const f = r.next();
    switch (f.num) {
      case 1: forEachVarint(f, where, (v) => t.dims.push(int64(v))); break;
      case 2: t.dataType = num(f, where); break;
      case 4: forEachFixed32(f, where, (b) => t.floatData.push(float32FromBits(b))); break;
      case 5: forEachVarint(f, where, (v) => t.int32Data.push(Number(BigInt.asIntN(32, v)))); break;
      case 7: forEachVarint(f, where, (v) => t.int64Data.push(BigInt.asIntN(64, v))); break;
      case 8: t.name = str(f, where); break;
      case 9: expectWire(f, WireType.Len, where); t.raw = f.bytes; break;
      case 10: forEachFixed64(f, where, (b) => { f64.setBigUint64(0, b, true); t.doubleData.push(f64.getFloat64(0, true)); }); break;
      case 13: t.external = true; break;
      case 14: if (num(f, where) === 1) t.external = true; break;
      default: break;
    }
  }
  return t;
}

const f64 = new DataView(new ArrayBuffer(8));

function decodeValueInfo(buf: Uint8Array, where: string): OnnxValueInfo {
  const r = new ProtoReader(buf, where);
  const v: OnnxValueInfo = { name: '', elemType: null, shape: null };
  while (!r.done) {
    const f = r.next();
    if (f.num === 1) v.name = str(f, where);
    else if (f.num === 2) {
      // TypeProto → tensor_type (1) → elem_type (1), shape (2) → dim (1) → dim_value (1) / dim_param (2).
      expectWire(f, WireType.Len, where);
      const tr = new ProtoReader(f.bytes, where);
      while (!tr.done) {
        const tf = tr.next();
        if (tf.num !== 1) continue;
        expectWire(tf, WireType.Len, where);
        const rr = new ProtoReader(tf.bytes, where);
        while (!rr.done) {
          const ef = rr.next();
          if (ef.num === 1) v.elemType = num(ef, where);
          else if (ef.num === 2) {
            expectWire(ef, WireType.Len, where);
            v.shape = [];
            const sr = new ProtoReader(ef.bytes, where);
            while (!sr.done) {
              const df = sr.next();
              if (df.num !== 1) continue;
              expectWire(df, WireType.Len, where);
              const dr = new ProtoReader(df.bytes, where);
              let d: number | string | null = null;
              while (!dr.done) {
                const x = dr.next();
                if (x.num === 1) d = num(x, where);
                else if (x.num === 2) d = str(x, where);
              }
              v.shape.push(d);
            }
          }
        }
      }
    }
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Writing (export builds these plain objects, then encodes them)

export type AttrValue =
  | { kind: 'int'; v: number }
  | { kind: 'ints'; v: number[] }
  | { kind: 'float'; v: number }
  | { kind: 'string'; v: string };

export interface NodeSpec {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  attrs?: Record<string, AttrValue>;
}

export interface TensorSpec {
  name: string;
  dims: number[];
  dataType: number;
  /** Little-endian element bytes. */
  raw: Uint8Array;
}

export interface ValueSpec {
  name: string;
  elemType: number;
  shape: (number | string)[];
}

export interface ModelSpec {
  irVersion: number;
  opset: number;
  producerName: string;
  producerVersion: string;
  graphName: string;
  nodes: NodeSpec[];
  initializers: TensorSpec[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  docString?: string;
}

function encodeAttribute(name: string, a: AttrValue): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  switch (a.kind) {
    case 'int': w.int(3, a.v).int(20, AttrType.INT); break;
    case 'ints': w.packedInts(8, a.v).int(20, AttrType.INTS); break;
    case 'float': w.float(2, a.v).int(20, AttrType.FLOAT); break;
    case 'string': w.string(4, a.v).int(20, AttrType.STRING); break;
  }
  return w;
}

function encodeValueInfo(v: ValueSpec): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.shape) shape.message(1, typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
  const tensorType = new ProtoWriter().int(1, v.elemType).message(2, shape);
  return new ProtoWriter().string(1, v.name).message(2, new ProtoWriter().message(1, tensorType));
}

export function encodeTensor(t: TensorSpec): ProtoWriter {
  return new ProtoWriter().packedInts(1, t.dims).int(2, t.dataType).string(8, t.name).bytes(9, t.raw);
}

export function encodeModel(m: ModelSpec): Uint8Array {
  const g = new ProtoWriter();
  for (const n of m.nodes) {
    const nw = new ProtoWriter();
    for (const i of n.inputs) nw.string(1, i);
    for (const o of n.outputs) nw.string(2, o);
    if (n.name) nw.string(3, n.name);
    nw.string(4, n.opType);
    for (const [k, a] of Object.entries(n.attrs ?? {})) nw.message(5, encodeAttribute(k, a));
    g.message(1, nw);
  }
  g.string(2, m.graphName);
  for (const t of m.initializers) g.message(5, encodeTensor(t));
  for (const v of m.inputs) g.message(11, encodeValueInfo(v));
  for (const v of m.outputs) g.message(12, encodeValueInfo(v));
  const w = new ProtoWriter()
    .int(1, m.irVersion)
    .string(2, m.producerName)
    .string(3, m.producerVersion);
  if (m.docString) w.string(6, m.docString);
  w.message(7, g);
  w.message(8, new ProtoWriter().string(1, '').int(2, m.opset));
  return w.finish();
}
