/**
 * `A+B+…`: several sources as one labelled set, for pretraining on more than one source. Labels are
 * kept apart — each part's classes follow the previous part's, named `kind:class` — and the pixels
 * are copied into one buffer so workers still read a single shared storage.
 */
import { Dataset, Item, Splits, SplitName } from '../dataset';
import { InputError } from '../../errors';

/** Splits a composed name into its parts; a single source gives one part. */
export function composedParts(name: string, isSourceName: (part: string) => boolean): string[] {
  if (!name.includes('+')) return [name];
  const parts = name.split('+');
  // A folder path may contain '+': only a name whose every part names a source is a composition.
  return parts.every((p) => p !== '' && isSourceName(p)) ? parts : [name];
}

function kindOf(name: string): string {
  const colon = name.indexOf(':');
  return colon < 0 ? name : name.slice(0, colon);
}

export function composeSources(name: string, parts: Dataset[]): Dataset {
  if (parts.length < 2) throw new InputError(`${name}: a composition needs at least two sources`);
  const first = parts[0];
  for (const p of parts) {
    if (p.storage.kind !== 'memory') throw new InputError(`${name}: '${p.name}' is a folder of files; only fixed-size sources (quickdraw, glyphs, mnist, ...) compose`);
    const f = first.storage as { height: number; width: number; channels: number };
    if (p.storage.height !== f.height || p.storage.width !== f.width || p.storage.channels !== f.channels) {
      throw new InputError(`${name}: '${p.name}' is ${p.storage.height}×${p.storage.width}×${p.storage.channels} but '${first.name}' is ${f.height}×${f.width}×${f.channels}; give the parts one size (glyphs take size=N)`);
    }
  }
  const own = (s: SplitName) => parts.filter((p) => p.splits[s] !== undefined).length;
  for (const s of ['val', 'test'] as const) {
    const n = own(s);
    if (n > 0 && n < parts.length) throw new InputError(`${name}: some parts have their own ${s} split and some do not; compose sources of one kind`);
  }
  const px = first.storage.kind === 'memory' ? first.storage.height * first.storage.width * first.storage.channels : 0;
  const counts = parts.map((p) => new Uint8Array((p.storage as { pixels: SharedArrayBuffer }).pixels).length / px);
  const shared = new SharedArrayBuffer(counts.reduce((a, b) => a + b, 0) * px);
  const view = new Uint8Array(shared);
  const classes: string[] = [];
  const splits: Splits = { train: [] };
  let indexBase = 0;
  for (let k = 0; k < parts.length; k++) {
    const p = parts[k];
    view.set(new Uint8Array((p.storage as { pixels: SharedArrayBuffer }).pixels), indexBase * px);
    const labelBase = classes.length;
    const kind = kindOf(p.name);
    classes.push(...p.classes.map((c) => `${kind}:${c}`));
    const shift = (items: Item[]) => items.map((it) => ({ index: it.index + indexBase, label: it.label + labelBase }));
    splits.train.push(...shift(p.splits.train));
    for (const s of ['val', 'test'] as const) if (p.splits[s]) splits[s] = [...(splits[s] ?? []), ...shift(p.splits[s]!)];
    indexBase += counts[k];
  }
  if (new Set(classes).size !== classes.length) throw new InputError(`${name}: two parts name the same class; compose different sources`);
  const f = first.storage as { height: number; width: number; channels: 1 | 3 };
  return {
    name,
    classes,
    splits,
    imageSize: first.imageSize,
    channels: first.channels,
    source: parts.map((p) => `${p.name}: ${p.source}`).join('; '),
    license: [...new Set(parts.map((p) => p.license))].join('; '),
    storage: { kind: 'memory', pixels: shared, height: f.height, width: f.width, channels: f.channels },
    skipped: [],
  };
}
