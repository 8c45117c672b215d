/**
 * The class index saved with every run: label i means classes[i]. A model is only meaningful with
 * the index it was trained with, so reading one back is strict and applying it to a dataset
 * relabels by name, never by position.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Dataset, Item, Splits } from './dataset';
import { InputError } from '../errors';

export interface ClassIndex {
  format: 'adafilter-class-index';
  version: 1;
  dataset: string;
  classes: string[];
}

export function classIndexOf(ds: Dataset): ClassIndex {
  return { format: 'adafilter-class-index', version: 1, dataset: ds.name, classes: ds.classes.slice() };
}

/** Writes atomically (temporary file, then rename), like everything in a run folder. */
export function writeClassIndex(file: string, index: ClassIndex): void {
  validate(index, file);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, JSON.stringify(index, null, 2) + '\n');
  fs.renameSync(tmp, file);
}

export function readClassIndex(file: string): ClassIndex {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) {
    throw new InputError(`${file}: cannot read class index (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let obj: unknown;
  try { obj = JSON.parse(text); } catch { throw new InputError(`${file}: class index is not valid JSON`); }
  return validate(obj, file);
}

function validate(obj: unknown, where: string): ClassIndex {
  const o = obj as Partial<ClassIndex> | null;
  if (!o || typeof o !== 'object' || o.format !== 'adafilter-class-index') throw new InputError(`${where}: not an adafilter class index`);
  if (o.version !== 1) throw new InputError(`${where}: class index version ${String(o.version)} is not supported (1 is)`);
  if (typeof o.dataset !== 'string') throw new InputError(`${where}: class index has no dataset name`);
  if (!Array.isArray(o.classes) || o.classes.length < 2 || !o.classes.every((c) => typeof c === 'string')) {
    throw new InputError(`${where}: class index needs a list of at least 2 class names`);
  }
  if (new Set(o.classes).size !== o.classes.length) throw new InputError(`${where}: class index lists a class twice`);
  return { format: o.format, version: 1, dataset: o.dataset, classes: o.classes.slice() };
}

/**
 * Relabels `ds` so label i means index.classes[i]. The dataset may hold a subset of the indexed
 * classes (evaluating on fewer classes); a class the index lacks is an error, never a guess.
 */
export function applyClassIndex(ds: Dataset, index: ClassIndex): Dataset {
  const map = ds.classes.map((c) => {
    const i = index.classes.indexOf(c);
    if (i < 0) throw new InputError(`${ds.name}: class '${c}' is not in the class index (of ${index.dataset})`);
    return i;
  });
  const re = (items?: Item[]) => items?.map((it) => ({ index: it.index, label: map[it.label] }));
  const splits: Splits = { train: re(ds.splits.train)! };
  if (ds.splits.val) splits.val = re(ds.splits.val);
  if (ds.splits.test) splits.test = re(ds.splits.test);
  return { ...ds, classes: index.classes.slice(), splits };
}
