/**
 * The dataset object every source produces. Pixels live either in one shared buffer (small
 * fixed-size datasets: the whole set fits in memory and workers read it without copies) or in files
 * decoded on demand (image folders), so workers can load items from a plain, cloneable description.
 */

/** One labelled example. `index` points into the dataset's storage; `label` into `classes`. */
export interface Item {
  index: number;
  label: number;
}

export type SplitName = 'train' | 'val' | 'test';

export interface Splits {
  train: Item[];
  val?: Item[];
  test?: Item[];
}

/** Every image has the same size: uint8, HWC, `count` images back to back. */
export interface MemoryStorage {
  kind: 'memory';
  pixels: SharedArrayBuffer;
  height: number;
  width: number;
  channels: 1 | 3;
}

/** One file per item; paths are raw bytes so names that are not valid UTF-8 still open. */
export interface FileStorage {
  kind: 'files';
  paths: Uint8Array[];
}

export type Storage = MemoryStorage | FileStorage;

/** Something left out with `skipBad`, and why. */
export interface Skipped {
  path: string;
  reason: string;
}

export interface Dataset {
  /** The name it was opened with, e.g. `mnist` or `folder:/data/birds`. */
  name: string;
  classes: string[];
  splits: Splits;
  /** [height, width] when all images share one size, null for folders of mixed sizes. */
  imageSize: [number, number] | null;
  /** Channels the images are decoded to: 1 (grayscale) or 3 (RGB). */
  channels: 1 | 3;
  /** Where the data comes from, in words. */
  source: string;
  license: string;
  storage: Storage;
  skipped: Skipped[];
  /**
   * Where a split's items really come from when it stands for another one: a validation-search
   * trial is scored on `test: 'val'` (see scoredOnValidation). Absent: each split is itself.
   */
  splitOrigin?: Partial<Record<SplitName, SplitName>>;
}

/** Decoded pixels: uint8, HWC. */
export interface RawImage {
  data: Uint8Array;
  height: number;
  width: number;
  channels: 1 | 3;
}

/** Counts per split, for `inspect`. */
export function splitCounts(ds: Dataset): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of ['train', 'val', 'test'] as const) if (ds.splits[s]) out[s] = ds.splits[s]!.length;
  return out;
}

/**
 * A printable, one-line form of a raw path: invalid UTF-8 bytes and control characters shown as
 * \xNN, so a hostile file name cannot break the CLI's one-line error.
 */
export function displayPath(p: Uint8Array | string): string {
  return rawDisplay(p).replace(/[\x00-\x1f\x7f]/g, (c) => '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0'));
}

function rawDisplay(p: Uint8Array | string): string {
  if (typeof p === 'string') return p;
  const b = Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  const s = b.toString('utf8');
  if (Buffer.from(s, 'utf8').equals(b)) return s;
  let out = '';
  let i = 0;
  while (i < b.length) {
    // Walk byte by byte: keep valid UTF-8 sequences, escape the rest.
    const len = utf8SeqLen(b, i);
    if (len > 0) { out += b.subarray(i, i + len).toString('utf8'); i += len; }
    else { out += '\\x' + b[i].toString(16).padStart(2, '0'); i++; }
  }
  return out;
}

function utf8SeqLen(b: Buffer, i: number): number {
  const c = b[i];
  const len = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0;
  if (len === 0 || i + len > b.length) return 0;
  for (let k = 1; k < len; k++) if ((b[i + k] & 0xc0) !== 0x80) return 0;
  const s = b.subarray(i, i + len).toString('utf8');
  return s.includes('\ufffd') ? 0 : len;
}

export function isValidUtf8(b: Uint8Array): boolean {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return Buffer.from(buf.toString('utf8'), 'utf8').equals(buf);
}
