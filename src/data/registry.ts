/**
 * Dataset names → sources. A name is `kind` or `kind:argument` (`quickdraw:cat,dog`,
 * `glyphs:scripts=Armenian`, `folder:/data/birds`); anything that looks like a path is a folder.
 */
import * as fs from 'node:fs';
import { Dataset } from './dataset';
import { openMnist, mnistDir } from './sources/mnist';
import { openFashionMnist, FASHION_MNIST_DIR } from './sources/fashion-mnist';
import { openQuickdraw, quickdrawDir } from './sources/quickdraw';
import { openGlyphs, parseGlyphSpec, NOTO_DIR, GLYPH_DEFAULTS } from './sources/glyphs';
import { openFolder } from './sources/folder';
import { composeSources, composedParts } from './sources/compose';
import { SplitOptions, makeSplits } from './split';
import { InputError } from '../errors';

export interface OpenOptions extends SplitOptions {
  /** Folders: leave out bad files instead of failing (listed in `dataset.skipped`). */
  skipBad?: boolean;
  /** Folders: decode to this many channels (default: 3 if any image has colour). */
  channels?: 1 | 3;
}

export interface SourceInfo {
  kind: string;
  usage: string;
  summary: string;
  license: string;
  /** Whether its files are installed here (null: depends on the argument). */
  available: () => boolean | null;
}

const exists = (p: () => string) => () => { try { return fs.existsSync(p()); } catch { return false; } };

export const SOURCES: SourceInfo[] = [
  { kind: 'mnist', usage: 'mnist', summary: 'handwritten digits, 10 classes, 60000 train + 10000 test, 28x28 gray',
    license: 'LeCun & Cortes (CC BY-SA 3.0)', available: exists(mnistDir) },
  { kind: 'fashion-mnist', usage: 'fashion-mnist', summary: 'clothing, 10 classes, 60000 train + 10000 test, 28x28 gray',
    license: 'MIT (Zalando)', available: exists(() => FASHION_MNIST_DIR) },
  { kind: 'quickdraw', usage: 'quickdraw[:CLASSES]', summary: "Quick, Draw! doodles, 345 classes x 100, 28x28 gray; CLASSES e.g. '0-244' or 'cat,dog'",
    license: 'CC BY 4.0 (Google)', available: exists(quickdrawDir) },
  { kind: 'glyphs', usage: 'glyphs[:scripts=A,B|all;exclude=A,B;samples=N;size=N;max=N]',
    summary: `letters rendered from Noto fonts, one class per letter, scripts as alphabets (${GLYPH_DEFAULTS.samples} per letter, ${GLYPH_DEFAULTS.size}x${GLYPH_DEFAULTS.size} gray)`,
    license: 'fonts OFL-1.1', available: exists(() => NOTO_DIR) },
  { kind: 'folder', usage: 'folder:PATH or PATH', summary: 'one subfolder per class (optionally under train/ val/ test/), or a path,label[,split] CSV',
    license: 'your own', available: () => null },
];

function parseName(name: string): { kind: string; arg: string | undefined } {
  const colon = name.indexOf(':');
  const kind = colon < 0 ? name : name.slice(0, colon);
  const arg = colon < 0 ? undefined : name.slice(colon + 1);
  if (SOURCES.some((s) => s.kind === kind)) return { kind, arg };
  if (name.includes('/') || name.startsWith('.') || fs.existsSync(name)) return { kind: 'folder', arg: name };
  throw new InputError(`unknown dataset '${name}' (known: ${SOURCES.map((s) => s.kind).join(', ')}, or a folder path)`);
}

const isSourceName = (part: string) => SOURCES.some((s) => s.kind !== 'folder' && (part === s.kind || part.startsWith(`${s.kind}:`)));

/** The licences of the sources a name reads (each part of a composition), from the table above. */
export function sourceLicense(name: string): string {
  const kinds = composedParts(name, isSourceName).map((p) => parseName(p).kind);
  return [...new Set(kinds)].map((k) => `${k}: ${SOURCES.find((s) => s.kind === k)!.license}`).join('; ');
}

/** The source as it comes, with its own splits only. `A+B` composes sources with their labels kept apart. */
export async function openSource(name: string, opts: OpenOptions = {}): Promise<Dataset> {
  const parts = composedParts(name, isSourceName);
  if (parts.length > 1) {
    const opened: Dataset[] = [];
    for (const p of parts) opened.push(await openPart(p, opts));
    return composeSources(name, opened);
  }
  return openPart(name, opts);
}

async function openPart(name: string, opts: OpenOptions): Promise<Dataset> {
  const { kind, arg } = parseName(name);
  switch (kind) {
    case 'mnist':
    case 'fashion-mnist':
      if (arg) throw new InputError(`${kind} takes no argument (got '${arg}')`);
      return kind === 'mnist' ? openMnist() : openFashionMnist();
    case 'quickdraw':
      return openQuickdraw(arg);
    case 'glyphs':
      return openGlyphs(name, { ...parseGlyphSpec(arg), seed: opts.seed ?? 0 });
    default:
      if (!arg) throw new InputError('folder: needs a path (folder:PATH)');
      return openFolder(name, arg, { skipBad: opts.skipBad, channels: opts.channels });
  }
}

/** A dataset ready for training: classes selected, val/test carved by seed, shots sampled. */
export async function openDataset(name: string, opts: OpenOptions = {}): Promise<Dataset> {
  return makeSplits(await openSource(name, opts), opts);
}
