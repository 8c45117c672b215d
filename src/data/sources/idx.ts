/**
 * IDX files (the MNIST format): big-endian header, magic 0x0000 <type> <ndims>, then the
 * dimensions, then raw data. Read whole, optionally gzipped, and checked before any byte is
 * trusted, because a short or mislabelled file would otherwise give wrong pixels silently.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { InputError } from '../../errors';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Reads an unsigned-byte IDX file with `ndims` dimensions (3 for images, 1 for labels). */
export function readIdx(file: string, ndims: number): IdxArray {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new InputError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = zlib.gunzipSync(buf);
    } catch (e) {
      throw new InputError(`${file}: corrupt gzip data (${(e as Error).message})`);
    }
  }
  return parseIdx(buf, ndims, file);
}

export function parseIdx(buf: Buffer, ndims: number, where: string): IdxArray {
  if (buf.length < 4) throw new InputError(`${where}: too short for an IDX header (${buf.length} bytes)`);
  if (buf[0] !== 0 || buf[1] !== 0) throw new InputError(`${where}: not an IDX file (bad magic)`);
  if (buf[2] !== 0x08) throw new InputError(`${where}: IDX element type 0x${buf[2].toString(16)} is not unsigned byte (0x08)`);
  if (buf[3] !== ndims) throw new InputError(`${where}: expected ${ndims} dimensions, header says ${buf[3]}`);
  const header = 4 + 4 * ndims;
  if (buf.length < header) throw new InputError(`${where}: truncated IDX header`);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(buf.readUInt32BE(4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  if (buf.length !== header + size) {
    throw new InputError(`${where}: IDX dims ${dims.join('x')} need ${header + size} bytes, file has ${buf.length}` +
      (buf.length < header + size ? ' (truncated)' : ''));
  }
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + header, size) };
}

/**
 * Images and labels of one split as a shared pixel buffer plus labels, after checking that the
 * two files agree on the count and that labels fall in [0, numClasses).
 */
export function readIdxPair(imagesFile: string, labelsFile: string, numClasses: number):
  { count: number; height: number; width: number; pixels: Uint8Array; labels: Uint8Array } {
  const images = readIdx(imagesFile, 3);
  const labels = readIdx(labelsFile, 1);
  const [count, height, width] = images.dims;
  if (labels.dims[0] !== count) {
    throw new InputError(`${labelsFile}: ${labels.dims[0]} labels for ${count} images in ${imagesFile}`);
  }
  for (let i = 0; i < count; i++) {
    if (labels.data[i] >= numClasses) throw new InputError(`${labelsFile}: label ${labels.data[i]} at ${i} is outside 0..${numClasses - 1}`);
  }
  return { count, height, width, pixels: images.data, labels: labels.data };
}
