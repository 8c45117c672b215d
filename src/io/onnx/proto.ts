/**
 * Protobuf wire format, the subset ONNX needs: varint, 64-bit, length-delimited and 32-bit fields.
 * Written here rather than taken from a protobuf library so that reading files from strangers is
 * bounded by construction: every length is checked against the bytes that are really there before
 * anything is sliced, nothing is allocated from a size the file claims, and nesting depth is capped
 * by the caller (see onnx-model.ts).
 */
import { InputError } from '../../errors';

export const enum WireType {
  Varint = 0,
  I64 = 1,
  Len = 2,
  StartGroup = 3,
  EndGroup = 4,
  I32 = 5,
}

/** One field of a message as read: its number, wire type and raw value. */
export interface Field {
  num: number;
  wire: WireType;
  /** Varint and fixed64 values (BigInt: int64 fields may use the whole range). */
  int: bigint;
  /** Fixed32 bits. */
  i32: number;
  /** Length-delimited payload: a view into the file's bytes, not a copy. */
  bytes: Uint8Array;
}

/** Reads the fields of one message from `buf` (a view of exactly that message's bytes). */
export class ProtoReader {
  private pos = 0;
  private readonly view: DataView;

  constructor(private readonly buf: Uint8Array, private readonly where: string) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  fail(msg: string): never {
    throw new InputError(`${this.where}: ${msg}`);
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  /** A varint of at most 10 bytes, as an unsigned 64-bit BigInt. */
  varint(): bigint {
    // Fast path for the common short varints (tags, lengths, small ints): no BigInt work.
    let lo = 0, shift = 0, i = 0;
    const b = this.buf;
    for (; i < 4; i++) {
      if (this.pos >= b.length) this.fail('truncated varint');
      const c = b[this.pos++];
      lo |= (c & 0x7f) << shift;
      if (c < 0x80) return BigInt(lo >>> 0);
      shift += 7;
    }
    let v = BigInt(lo >>> 0);
    let s = 28n;
    for (; i < 10; i++) {
      if (this.pos >= b.length) this.fail('truncated varint');
      const c = b[this.pos++];
      v |= BigInt(c & 0x7f) << s;
      if (c < 0x80) return BigInt.asUintN(64, v);
      s += 7n;
    }
    this.fail('varint longer than 10 bytes');
  }

  /** A varint that must be a non-negative safe integer no larger than `max` (lengths, tags). */
  smallVarint(max: number, what: string): number {
    const v = this.varint();
    if (v > BigInt(max)) this.fail(`${what} ${v} is too large (at most ${max} here)`);
    return Number(v);
  }

  next(): Field {
    const tag = this.smallVarint(0xffffffff, 'field tag');
    const num = Math.floor(tag / 8), wire = (tag & 7) as WireType;
    if (num === 0) this.fail('field number 0');
    const f: Field = { num, wire, int: 0n, i32: 0, bytes: EMPTY };
    switch (wire) {
      case WireType.Varint:
        f.int = this.varint();
        break;
      case WireType.I64:
        this.need(8);
        f.int = this.view.getBigUint64(this.pos, true);
        this.pos += 8;
        break;
      case WireType.I32:
        this.need(4);
        f.i32 = this.view.getUint32(this.pos, true);
        this.pos += 4;
        break;
      case WireType.Len: {
        const len = this.smallVarint(this.buf.length - this.pos, 'length prefix');
        f.bytes = this.buf.subarray(this.pos, this.pos + len);
        this.pos += len;
        break;
      }
      default:
        // Groups are deprecated and never used by ONNX; refusing them avoids a second nesting path.
        this.fail(`unsupported wire type ${wire} (field ${num})`);
    }
    return f;
  }

  private need(n: number): void {
    if (this.buf.length - this.pos < n) this.fail('truncated fixed-size field');
  }
}

const EMPTY = new Uint8Array(0);

/** int64 field value as a JS number (two's complement; beyond ±2^53 it is rounded). */
export function int64(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

/**
 * Repeated scalar fields may come packed (one length-delimited field) or one field per value; a
 * parser must accept both. Calls `each` once per value, so no array is ever sized from a count the
 * file claims.
 */
export function forEachVarint(f: Field, where: string, each: (v: bigint) => void): void {
  if (f.wire === WireType.Varint) { each(f.int); return; }
  if (f.wire !== WireType.Len) throw new InputError(`${where}: field ${f.num} has wire type ${f.wire}, expected a varint`);
  const r = new ProtoReader(f.bytes, where);
  while (!r.done) each(r.varint());
}

export function forEachFixed32(f: Field, where: string, each: (bits: number) => void): void {
  if (f.wire === WireType.I32) { each(f.i32); return; }
  if (f.wire !== WireType.Len || f.bytes.length % 4) throw new InputError(`${where}: field ${f.num} is not a list of 32-bit values`);
  const v = new DataView(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength);
  for (let i = 0; i < f.bytes.length; i += 4) each(v.getUint32(i, true));
}

export function forEachFixed64(f: Field, where: string, each: (bits: bigint) => void): void {
  if (f.wire === WireType.I64) { each(f.int); return; }
  if (f.wire !== WireType.Len || f.bytes.length % 8) throw new InputError(`${where}: field ${f.num} is not a list of 64-bit values`);
  const v = new DataView(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength);
  for (let i = 0; i < f.bytes.length; i += 8) each(v.getBigUint64(i, true));
}

const f32 = new DataView(new ArrayBuffer(8));
export function float32FromBits(bits: number): number {
  f32.setUint32(0, bits, true);
  return f32.getFloat32(0, true);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
export function decodeString(b: Uint8Array, where: string): string {
  try {
    return utf8.decode(b);
  } catch {
    throw new InputError(`${where}: a string field is not valid UTF-8`);
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * Builds one message. Sub-messages are built first and embedded whole (their length must precede
 * them), which is simple and fine at our sizes: the biggest part, tensor data, is kept as the
 * caller's views and only copied once, into the final buffer.
 */
export class ProtoWriter {
  private readonly parts: Uint8Array[] = [];
  private size = 0;
  private scratch: number[] = [];

  private flushScratch(): void {
    if (this.scratch.length) {
      const b = Uint8Array.from(this.scratch);
      this.parts.push(b);
      this.size += b.length;
      this.scratch = [];
    }
  }

  private rawVarint(v: bigint | number): void {
    let x = BigInt.asUintN(64, BigInt(v));
    while (x >= 0x80n) {
      this.scratch.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.scratch.push(Number(x));
  }

  private tag(num: number, wire: WireType): void {
    this.rawVarint(num * 8 + wire);
  }

  /** int32/int64/enum/bool (negative values take 10 bytes, as protobuf does). */
  int(num: number, v: number | bigint): this {
    this.tag(num, WireType.Varint);
    this.rawVarint(typeof v === 'number' ? BigInt(Math.trunc(v)) : v);
    return this;
  }

  float(num: number, v: number): this {
    this.tag(num, WireType.I32);
    f32.setFloat32(0, v, true);
    for (let i = 0; i < 4; i++) this.scratch.push(f32.getUint8(i));
    return this;
  }

  bytes(num: number, b: Uint8Array): this {
    this.tag(num, WireType.Len);
    this.rawVarint(b.length);
    this.flushScratch();
    if (b.length) {
      this.parts.push(b);
      this.size += b.length;
    }
    return this;
  }

  string(num: number, s: string): this {
    return this.bytes(num, Buffer.from(s, 'utf8'));
  }

  message(num: number, m: ProtoWriter): this {
    return this.bytes(num, m.finish());
  }

  /** Packed repeated int64. */
  packedInts(num: number, vs: readonly (number | bigint)[]): this {
    const w = new ProtoWriter();
    for (const v of vs) w.rawVarint(typeof v === 'number' ? BigInt(Math.trunc(v)) : v);
    return this.bytes(num, w.finish());
  }

  finish(): Uint8Array {
    this.flushScratch();
    if (this.parts.length === 1) return this.parts[0];
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const p of this.parts) { out.set(p, o); o += p.length; }
    return out;
  }
}
