/** Shared fixtures for the data tests: temporary folders of real images, written with sharp. */
import { tmpDir as makeTmpDir } from '../helpers/tmp';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';

export const ROOT = path.resolve(__dirname, '..', '..', '..');

/** A fresh temporary folder, removed when the test process exits. */
export const tmpDir = (tag: string): string => makeTmpDir(`adafilter-data-${tag}`);

export type Rgb = [number, number, number];

/** A solid-colour image with a small white square off centre, so flips and crops are visible. */
export async function imageBytes(fmt: 'jpg' | 'png' | 'webp' | 'gif' | 'tiff', rgb: Rgb, w = 24, h = 20): Promise<Buffer> {
  const px = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) px.set(rgb, i * 3);
  const img = sharp(px, { raw: { width: w, height: h, channels: 3 } });
  switch (fmt) {
    case 'jpg': return img.jpeg({ quality: 95 }).toBuffer();
    case 'png': return img.png().toBuffer();
    case 'webp': return img.webp({ lossless: true }).toBuffer();
    case 'gif': return img.gif().toBuffer();
    case 'tiff': return img.tiff().toBuffer();
  }
}

export async function writeImage(file: string, fmt: 'jpg' | 'png' | 'webp' | 'gif' | 'tiff', rgb: Rgb, w = 24, h = 20): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, await imageBytes(fmt, rgb, w, h));
}

/** An uncompressed BMP: 24- or 32-bit, or 8-bit with a palette; bottom-up unless topDown. */
export function bmpBytes(w: number, h: number, pixel: (x: number, y: number) => Rgb, bpp: 8 | 24 | 32 = 24, topDown = false): Buffer {
  const stride = Math.floor((bpp * w + 31) / 32) * 4;
  const palette: Rgb[] = [];
  const palIndex = (c: Rgb) => {
    let i = palette.findIndex((p) => p[0] === c[0] && p[1] === c[1] && p[2] === c[2]);
    if (i < 0) { palette.push(c); i = palette.length - 1; }
    return i;
  };
  const data = Buffer.alloc(stride * h);
  for (let y = 0; y < h; y++) {
    const row = (topDown ? y : h - 1 - y) * stride;
    for (let x = 0; x < w; x++) {
      const c = pixel(x, y);
      if (bpp === 8) data[row + x] = palIndex(c);
      else { const o = row + x * (bpp / 8); data[o] = c[2]; data[o + 1] = c[1]; data[o + 2] = c[0]; if (bpp === 32) data[o + 3] = 255; }
    }
  }
  const palBytes = bpp === 8 ? palette.length * 4 : 0;
  const offset = 14 + 40 + palBytes;
  const b = Buffer.alloc(offset + data.length);
  b.write('BM', 0, 'latin1');
  b.writeUInt32LE(b.length, 2);
  b.writeUInt32LE(offset, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(w, 18);
  b.writeInt32LE(topDown ? -h : h, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(bpp, 28);
  b.writeUInt32LE(0, 30);
  b.writeUInt32LE(data.length, 34);
  b.writeUInt32LE(bpp === 8 ? palette.length : 0, 46);
  palette.forEach((c, i) => { b[54 + i * 4] = c[2]; b[55 + i * 4] = c[1]; b[56 + i * 4] = c[0]; });
  data.copy(b, offset);
  return b;
}

/** Two valid classes, a (red) and b (green), two PNGs each: the base every bad-input case adds to. */
export async function twoClassFolder(tag: string): Promise<string> {
  const dir = tmpDir(tag);
  await writeImage(path.join(dir, 'a', '1.png'), 'png', [220, 20, 20]);
  await writeImage(path.join(dir, 'a', '2.png'), 'png', [220, 20, 20]);
  await writeImage(path.join(dir, 'b', '1.png'), 'png', [20, 220, 20]);
  await writeImage(path.join(dir, 'b', '2.png'), 'png', [20, 220, 20]);
  return dir;
}

/** Runs the compiled CLI; returns exit code and output. */
export function runCli(args: string[]): { code: number; stdout: string; stderr: string } {
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'adafilter.js'), ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
