/**
 * Rendered glyphs: an Omniglot-like many-alphabet source made from Debian's fonts-noto-core. A
 * script is an alphabet, a letter is a class, and fonts × weights × seeded affine and stroke
 * jitter play the writers. Rendering is deterministic by seed on one machine.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Dataset, Item } from '../dataset';
import { Rng, mix } from '../rng';
import { fontCodepoints } from './cmap';
import { InputError } from '../../errors';

export const NOTO_DIR = '/usr/share/fonts/truetype/noto';

export interface GlyphOptions {
  /** Script names as Unicode spells them (Armenian, Old_Italic, ...), or 'all'; default: every script with 10-100 letters. */
  scripts?: string[] | 'all';
  /** Scripts left out of the selection (a pretraining source keeps its transfer targets out). */
  exclude?: string[];
  /** Renderings per letter (Omniglot has 20 drawers per character). */
  samples?: number;
  /** Square image side in pixels. */
  size?: number;
  /** Keep at most this many letters per script (lowest code points first). */
  maxPerScript?: number;
  seed?: number;
  dir?: string;
}

export const GLYPH_DEFAULTS = { samples: 20, size: 32 };

interface ScriptFonts { script: string; fonts: { file: string; cps: Set<number> }[] }

const ALIASES: Record<string, string> = { NKo: 'Nko', PhagsPa: 'Phags_Pa' };
const GENERIC_SCRIPTS = ['Latin', 'Greek', 'Cyrillic'];
/**
 * The CJK family never enters `scripts=all`: targets of that family (Chinese, Japanese, Korean
 * characters) stay unseen. fonts-noto-core has none of them today; this keeps it so if that changes.
 */
export const CJK_FAMILY = ['Han', 'Hiragana', 'Katakana', 'Hangul', 'Bopomofo'];

function isScript(name: string): boolean {
  try { new RegExp(`\\p{Script=${name}}`, 'u'); return true; } catch { return false; }
}

/** Unicode script name(s) a Noto file is for, from its name (NotoSansOldItalic-Bold → Old_Italic). */
export function scriptsOfFont(file: string): string[] {
  const m = /^Noto(?:Sans|Serif|Kufi|Naskh|Nastaliq|Rashi|Looped|Traditional)?(.*)-(Regular|Bold)\.[ot]tf$/.exec(path.basename(file));
  if (!m) return [];
  const rest = m[1];
  if (rest === '' || rest === 'Display') return GENERIC_SCRIPTS;
  if (ALIASES[rest]) return [ALIASES[rest]];
  const words = rest.match(/[A-Z]+(?![a-z])|[A-Z][a-z]*|\d+/g) ?? [];
  // Longest prefix that names a script: TamilSupplement → Tamil, AdlamUnjoined → Adlam.
  for (let n = words.length; n > 0; n--) {
    for (const cand of [words.slice(0, n).join('_'), words.slice(0, n).join('')]) if (isScript(cand)) return [cand];
  }
  return [];
}

/** Script → fonts covering it, from the font files present. */
export function glyphInventory(dir = NOTO_DIR): Map<string, ScriptFonts> {
  if (!fs.existsSync(dir)) throw new InputError(`glyphs: ${dir} not found (install the Debian package fonts-noto-core)`);
  const out = new Map<string, ScriptFonts>();
  for (const f of fs.readdirSync(dir).sort()) {
    const scripts = scriptsOfFont(f);
    if (!scripts.length) continue;
    const file = path.join(dir, f);
    let cps: Set<number>;
    try { cps = fontCodepoints(file); } catch { continue; } // a damaged font is just not a writer
    for (const s of scripts) {
      if (!out.has(s)) out.set(s, { script: s, fonts: [] });
      out.get(s)!.fonts.push({ file, cps });
    }
  }
  return out;
}

/** Letters of a script that some font has: one class each. Precomposed letters are left out (they are base + accent). */
export function scriptLetters(sf: ScriptFonts): number[] {
  const re = new RegExp(`^(?=\\p{Script=${sf.script}})\\p{L}$`, 'u');
  const all = new Set<number>();
  for (const f of sf.fonts) for (const cp of f.cps) all.add(cp);
  return [...all].filter((cp) => {
    const ch = String.fromCodePoint(cp);
    return re.test(ch) && ch.normalize('NFD') === ch;
  }).sort((a, b) => a - b);
}

type Canvas = import('@napi-rs/canvas').Canvas;
type Ctx = import('@napi-rs/canvas').SKRSContext2D;

class Renderer {
  private readonly canvas: Canvas;
  private readonly ctx: Ctx;
  private readonly registered = new Map<string, string>();
  private readonly canvasLib: typeof import('@napi-rs/canvas');

  constructor(readonly size: number) {
    this.canvasLib = require('@napi-rs/canvas');
    this.canvas = this.canvasLib.createCanvas(size, size);
    this.ctx = this.canvas.getContext('2d');
  }

  family(file: string): string {
    let fam = this.registered.get(file);
    if (!fam) {
      fam = `adafilter-${path.basename(file).replace(/\.[ot]tf$/, '')}`;
      if (!this.canvasLib.GlobalFonts.registerFromPath(file, fam)) throw new InputError(`glyphs: cannot load font ${file}`);
      this.registered.set(file, fam);
    }
    return fam;
  }

  /** Draws `ch` white on black; `rng` null means the plain, centred rendering used for checks. */
  draw(ch: string, file: string, rng: Rng | null, into: Uint8Array, at: number): void {
    const s = this.size, ctx = this.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, s, s);
    const px = s * 0.62 * (rng ? rng.uniform(0.85, 1.1) : 1);
    ctx.font = `${px.toFixed(2)}px "${this.family(file)}"`;
    ctx.textAlign = 'left';
    ctx.textBaseline = 'alphabetic';
    const m = ctx.measureText(ch);
    // Centre the ink box, not the advance: letters differ a lot in bearings and height.
    const cx = (m.actualBoundingBoxRight - m.actualBoundingBoxLeft) / 2;
    const cy = (m.actualBoundingBoxDescent - m.actualBoundingBoxAscent) / 2;
    ctx.translate(s / 2 + (rng ? rng.uniform(-1.5, 1.5) : 0), s / 2 + (rng ? rng.uniform(-1.5, 1.5) : 0));
    if (rng) {
      ctx.rotate(rng.uniform(-12, 12) * Math.PI / 180);
      ctx.transform(1, 0, rng.uniform(-0.2, 0.2), 1, 0, 0);
    }
    ctx.fillStyle = '#fff';
    ctx.fillText(ch, -cx, -cy);
    if (rng && rng.float() < 0.5) {
      // A pen-width change: outline the glyph with a random stroke, thickening it.
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = rng.uniform(0.3, 1.6);
      ctx.lineJoin = 'round';
      ctx.strokeText(ch, -cx, -cy);
    }
    const d = ctx.getImageData(0, 0, s, s).data;
    for (let i = 0; i < s * s; i++) into[at + i] = d[i * 4];
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function parseGlyphSpec(arg: string | undefined): GlyphOptions {
  const opts: GlyphOptions = {};
  if (!arg) return opts;
  for (const part of arg.split(';').flatMap((p) => p.split('&'))) {
    const [k, v] = part.split('=', 2).map((s) => s?.trim());
    if (!k) continue;
    const int = () => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new InputError(`glyphs: ${k} must be a positive integer, got '${v}'`);
      return n;
    };
    const list = () => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    if (k === 'scripts') opts.scripts = v === 'all' ? 'all' : list();
    else if (k === 'exclude') opts.exclude = list();
    else if (k === 'samples') opts.samples = int();
    else if (k === 'size') opts.size = int();
    else if (k === 'max') opts.maxPerScript = int();
    else throw new InputError(`glyphs: unknown option '${k}' (scripts, exclude, samples, size, max)`);
  }
  return opts;
}

export function defaultGlyphScripts(inv: Map<string, ScriptFonts>): string[] {
  return [...inv.values()].filter((sf) => { const n = scriptLetters(sf).length; return n >= 10 && n <= 100; })
    .map((sf) => sf.script).sort();
}

/** `scripts=all`: every script with at least 10 letters, the CJK family aside. */
export function allGlyphScripts(inv: Map<string, ScriptFonts>): string[] {
  return [...inv.values()].filter((sf) => !CJK_FAMILY.includes(sf.script) && scriptLetters(sf).length >= 10)
    .map((sf) => sf.script).sort();
}

export function openGlyphs(spec: string, opts: GlyphOptions = {}): Dataset {
  const inv = glyphInventory(opts.dir);
  const samples = opts.samples ?? GLYPH_DEFAULTS.samples;
  const size = opts.size ?? GLYPH_DEFAULTS.size;
  if (size < 8 || size > 256) throw new InputError(`glyphs: size ${size} outside 8..256`);
  const seed = opts.seed ?? 0;
  const chosen = opts.scripts === 'all' ? allGlyphScripts(inv) : opts.scripts ?? defaultGlyphScripts(inv);
  for (const s of [...chosen, ...(opts.exclude ?? [])]) {
    if (!inv.has(s)) {
      const near = [...inv.keys()].filter((k) => k.toLowerCase() === s.toLowerCase());
      throw new InputError(`glyphs: no fonts for script '${s}'${near.length ? ` (did you mean ${near[0]}?)` : ''} — see 'adafilter datasets list'`);
    }
  }
  const scripts = chosen.filter((s) => !opts.exclude?.includes(s));
  const r = new Renderer(size);
  const px = size * size;
  const plain = new Uint8Array(px), notdef = new Uint8Array(px);
  // The .notdef box each font draws for a code point nobody maps (a private-use one).
  const notdefOf = new Map<string, Uint8Array>();
  const classes: string[] = [];
  const writers: { ch: string; cp: number; script: string; files: string[] }[] = [];
  for (const script of scripts) {
    const sf = inv.get(script)!;
    let letters = scriptLetters(sf);
    if (opts.maxPerScript) letters = letters.slice(0, opts.maxPerScript);
    for (const cp of letters) {
      const ch = String.fromCodePoint(cp);
      const files: string[] = [];
      for (const f of sf.fonts) {
        if (!f.cps.has(cp)) continue;
        let nd = notdefOf.get(f.file);
        if (!nd) { r.draw('\u{10FFFD}', f.file, null, notdef, 0); nd = notdef.slice(); notdefOf.set(f.file, nd); }
        r.draw(ch, f.file, null, plain, 0);
        if (plain.some((v) => v > 0) && !sameBytes(plain, nd)) files.push(f.file);
      }
      if (files.length === 0) continue; // no font really draws it: not a class
      classes.push(`${script}:${ch}`);
      writers.push({ ch, cp, script, files });
    }
  }
  if (classes.length < 2) throw new InputError(`glyphs: scripts ${scripts.join(',')} give ${classes.length} renderable letters; at least 2 are needed`);
  const shared = new SharedArrayBuffer(classes.length * samples * px);
  const view = new Uint8Array(shared);
  const items: Item[] = [];
  for (let c = 0; c < writers.length; c++) {
    const w = writers[c];
    for (let k = 0; k < samples; k++) {
      // Seeded by the letter itself, so a letter renders the same whichever scripts are selected.
      const rng = new Rng(seed, mix(w.cp), k, samples, size);
      const file = w.files[rng.int(w.files.length)];
      const index = c * samples + k;
      r.draw(w.ch, file, rng, view, index * px);
      items.push({ index, label: c });
    }
  }
  return {
    name: spec,
    classes,
    splits: { train: items },
    imageSize: [size, size],
    channels: 1,
    source: `rendered from Debian fonts-noto-core (${NOTO_DIR}), scripts ${scripts.join(', ')}, ${samples} per letter, seed ${seed}`,
    license: 'fonts: SIL Open Font License 1.1 (Noto); renderings are generated',
    storage: { kind: 'memory', pixels: shared, height: size, width: size, channels: 1 },
    skipped: [],
  };
}
