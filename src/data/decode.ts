/**
 * Decodes one image file to uint8 pixels with the requested channels. Every mode (grayscale,
 * palette, RGBA, 16-bit, CMYK) is converted, not rejected; anything sharp or the BMP reader
 * cannot decode becomes an InputError naming the file.
 */
import * as fs from 'node:fs';
import sharp from 'sharp';
import { RawImage, displayPath } from './dataset';
import { BmpError, decodeBmp, isBmp } from './bmp';
import { InputError } from '../errors';

// Each file is decoded once per epoch in a stream of many: libvips' operation cache would only grow.
sharp.cache(false);

export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.bmp', '.tif', '.tiff']);

export async function readFileBytes(p: Uint8Array | string): Promise<Buffer> {
  const target = typeof p === 'string' ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  try {
    return await fs.promises.readFile(target);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ELOOP' ? 'symlink loop' : code === 'ENOENT' ? 'file not found (dangling link?)' :
      code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (code ?? (e as Error).message);
    throw new InputError(`${displayPath(p)}: unreadable (${why})`);
  }
}

/**
 * Decodes `bytes`; when `minSide` is given, images much larger than needed are first shrunk by
 * sharp (short side down to `minSide`) because its filters alias less than bilinear sampling.
 */
export async function decodeImage(bytes: Buffer, channels: 1 | 3, where: string, minSide?: number): Promise<RawImage> {
  if (bytes.length === 0) throw new InputError(`${where}: empty file`);
  let img: ReturnType<typeof sharp>;
  try {
    if (isBmp(bytes)) {
      const bmp = decodeBmp(bytes);
      img = sharp(Buffer.from(bmp.data.buffer, bmp.data.byteOffset, bmp.data.byteLength),
        { raw: { width: bmp.width, height: bmp.height, channels: 3 } });
    } else {
      img = sharp(bytes, { failOn: 'warning' }).rotate();
    }
    img = img.flatten({ background: '#000000' }).toColourspace(channels === 1 ? 'b-w' : 'srgb');
    if (minSide !== undefined) {
      img = img.resize({ width: minSide, height: minSide, fit: 'outside', withoutEnlargement: true, kernel: 'lanczos3' });
    }
    const { data, info } = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return toChannels(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), info.width, info.height, info.channels, channels, where);
  } catch (e) {
    if (e instanceof InputError) throw e;
    const msg = e instanceof BmpError ? e.message : describeSharpError((e as Error).message);
    throw new InputError(`${where}: ${msg}`);
  }
}

function describeSharpError(msg: string): string {
  const first = msg.split('\n')[0];
  if (/unsupported image format/i.test(first)) return 'not an image (unrecognised format)';
  if (/premature end|truncated|unexpected end|not enough data|read error|out of data|corrupt/i.test(msg)) return `truncated or corrupt image (${first})`;
  return `cannot decode image (${first})`;
}

/** sharp returns 2 channels for grey+alpha or 4 for CMYK-like leftovers in rare cases; fold them. */
function toChannels(d: Uint8Array, width: number, height: number, have: number, want: 1 | 3, where: string): RawImage {
  if (have === want) return { data: d, width, height, channels: want };
  if (have < 1 || have > 4) throw new InputError(`${where}: unexpected ${have} channels after decoding`);
  const n = width * height;
  const out = new Uint8Array(n * want);
  for (let i = 0; i < n; i++) {
    if (want === 1) {
      out[i] = have >= 3 ? Math.round(0.299 * d[i * have] + 0.587 * d[i * have + 1] + 0.114 * d[i * have + 2]) : d[i * have];
    } else {
      for (let c = 0; c < 3; c++) out[i * 3 + c] = have >= 3 ? d[i * have + c] : d[i * have];
    }
  }
  return { data: out, width, height, channels: want };
}
