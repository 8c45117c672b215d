/**
 * A small BMP decoder, because sharp's prebuilt libvips does not read BMP. Uncompressed 24- and
 * 32-bit and 8-bit paletted only; every offset and size is checked against the file length before
 * it is read, so a hostile or truncated file gives a message instead of garbage or a crash.
 */
import { RawImage } from './dataset';

/** Thrown with a short reason; the caller adds the file name. */
export class BmpError extends Error {}

const MAX_PIXELS = 1 << 28;

export function isBmp(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d;
}

export function decodeBmp(b: Uint8Array): RawImage {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (!isBmp(b)) throw new BmpError('not a BMP file');
  if (b.length < 14 + 40) throw new BmpError('truncated BMP header');
  const dataOffset = view.getUint32(10, true);
  const dibSize = view.getUint32(14, true);
  if (dibSize !== 40 && dibSize !== 52 && dibSize !== 56 && dibSize !== 108 && dibSize !== 124) {
    throw new BmpError(`unsupported BMP header size ${dibSize}`);
  }
  if (14 + dibSize > b.length) throw new BmpError('truncated BMP header');
  const width = view.getInt32(18, true);
  const rawHeight = view.getInt32(22, true);
  const planes = view.getUint16(26, true);
  const bpp = view.getUint16(28, true);
  const compression = view.getUint32(30, true);
  const colorsUsed = view.getUint32(46, true);
  if (planes !== 1) throw new BmpError(`BMP planes is ${planes}, expected 1`);
  if (width <= 0 || rawHeight === 0 || rawHeight === -2147483648) throw new BmpError(`bad BMP size ${width}x${rawHeight}`);
  const height = Math.abs(rawHeight);
  if (width * height > MAX_PIXELS) throw new BmpError(`BMP too large (${width}x${height})`);
  const topDown = rawHeight < 0;
  if (bpp !== 8 && bpp !== 24 && bpp !== 32) throw new BmpError(`unsupported BMP bit depth ${bpp} (8, 24 and 32 are read)`);
  // BI_BITFIELDS with the standard BGRA masks is the same layout as BI_RGB for 32-bit files.
  let bitfieldsOk = false;
  if (compression === 3 && bpp === 32 && 14 + 40 + 12 <= b.length) {
    const masksAt = dibSize >= 52 ? 14 + 40 : 14 + dibSize;
    if (masksAt + 12 <= b.length) {
      bitfieldsOk = view.getUint32(masksAt, true) === 0x00ff0000 && view.getUint32(masksAt + 4, true) === 0x0000ff00 &&
        view.getUint32(masksAt + 8, true) === 0x000000ff;
    }
  }
  if (compression !== 0 && !bitfieldsOk) throw new BmpError(`compressed BMP (method ${compression}) is not supported`);

  let palette: Uint8Array | null = null;
  let paletteCount = 0;
  if (bpp === 8) {
    paletteCount = colorsUsed === 0 ? 256 : colorsUsed;
    if (paletteCount > 256) throw new BmpError(`BMP palette of ${paletteCount} colours for 8-bit pixels`);
    const palAt = 14 + dibSize;
    if (palAt + paletteCount * 4 > b.length) throw new BmpError('truncated BMP palette');
    palette = b.subarray(palAt, palAt + paletteCount * 4);
  }
  const stride = Math.floor((bpp * width + 31) / 32) * 4;
  if (dataOffset < 14 + dibSize || dataOffset + stride * height > b.length) {
    throw new BmpError(`truncated BMP pixel data (need ${stride * height} bytes at offset ${dataOffset}, file has ${b.length})`);
  }
  const out = new Uint8Array(width * height * 3);
  const bytesPerPixel = bpp / 8;
  for (let y = 0; y < height; y++) {
    const row = dataOffset + (topDown ? y : height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      if (palette) {
        const idx = b[row + x];
        if (idx >= paletteCount) throw new BmpError(`BMP pixel (${x},${y}) uses colour ${idx}, palette has ${paletteCount}`);
        out[o] = palette[idx * 4 + 2]; out[o + 1] = palette[idx * 4 + 1]; out[o + 2] = palette[idx * 4];
      } else {
        const p = row + x * bytesPerPixel;
        out[o] = b[p + 2]; out[o + 1] = b[p + 1]; out[o + 2] = b[p];
      }
    }
  }
  return { data: out, height, width, channels: 3 };
}
