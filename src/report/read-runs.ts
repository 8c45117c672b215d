/**
 * Reads run folders (run.json, log.jsonl, result.json) and compare folders (compare.json plus the
 * run folders inside it), written by the trainer, without modifying them. Every file is checked
 * field by field: these are files on disk a user may have edited, truncated or copied half-way, so
 * each problem becomes one InputError that names the file (and line, for log.jsonl).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import type { GateStats, LayerGateStats } from '../methods/gate-stats';
import type { EpochLog, GateLearning, GateLearningStats, RunConfig as TrainRunConfig } from '../train/run-folder';

export type { EpochLog };

/** The fields of run.json a report reads, each checked when read (inputSize as written: a number or a spec). */
export type RunConfig = Pick<TrainRunConfig, 'version' | 'backbone' | 'data' | 'method' | 'methodOptions' | 'epochs' | 'batch'
  | 'lr' | 'weightDecay' | 'shots' | 'seed' | 'classes' | 'createdAt'> & { inputSize: unknown; channels: number };

export interface RunResult {
  method: string;
  backbone: string;
  data: string;
  seed: number;
  epochs: number;
  bestEpoch: number;
  val: { acc: number; loss: number };
  test: { acc: number; loss: number; perClass: Record<string, number> };
  gates: GateStats | null;
  params: { total: number; trainable: number; frozen: number };
  trainSeconds: number;
}

export interface Run {
  /** Absolute path of the run folder. */
  dir: string;
  config: RunConfig;
  log: EpochLog[];
  /** null while the run has not finished (no result.json yet). */
  result: RunResult | null;
  /** `adafilter analyze similarity … --out RUN/similarity*.json` results kept in the folder, by file name. */
  similarity: SimilarityRecord[];
}

/** One analysis of the run's representations: per layer, CKA or SVCCA of model A (often its starting backbone) and B. */
export interface SimilarityRecord {
  file: string;
  a: string;
  b: string;
  metric: 'cka' | 'svcca';
  images: number;
  /** The metric per layer (linear CKA, or the mean canonical correlation); NaN where it is undefined. */
  layers: { name: string; value: number }[];
}

export interface CompareInfo {
  dir: string;
  backbone: string;
  data: string;
  methods: string[];
  seeds: number[];
}

export interface Inputs {
  runs: Run[];
  compares: CompareInfo[];
}

type Obj = Record<string, unknown>;

/** Field access that reports the file and the dotted path of whatever is wrong. */
class Fields {
  constructor(readonly file: string, readonly obj: Obj, readonly at = '') {}

  fail(key: string, want: string, got: unknown): never {
    const shown = got === undefined ? 'missing' : `got ${JSON.stringify(got)?.slice(0, 40) ?? typeof got}`;
    throw new InputError(`${this.file}: '${this.at}${key}' should be ${want} (${shown})`);
  }

  str(key: string): string {
    const v = this.obj[key];
    return typeof v === 'string' ? v : this.fail(key, 'a string', v);
  }

  num(key: string): number {
    const v = this.obj[key];
    return typeof v === 'number' && Number.isFinite(v) ? v : this.fail(key, 'a number', v);
  }

  /** Losses can diverge; the trainer writes null for NaN/Infinity since JSON has neither. */
  numOrNull(key: string): number {
    const v = this.obj[key];
    if (v === null) return NaN;
    return typeof v === 'number' && Number.isFinite(v) ? v : this.fail(key, 'a number or null', v);
  }

  int(key: string, min = 0): number {
    const v = this.obj[key];
    return typeof v === 'number' && Number.isInteger(v) && v >= min ? v : this.fail(key, `an integer >= ${min}`, v);
  }

  frac(key: string): number {
    const v = this.obj[key];
    return typeof v === 'number' && v >= 0 && v <= 1 ? v : this.fail(key, 'a number in [0, 1]', v);
  }

  /** Fractions that are NaN when nothing was measured (a layer seen by no example) come back as null. */
  fracOrNull(key: string): number {
    return this.obj[key] === null ? NaN : this.frac(key);
  }

  obj_(key: string): Fields {
    const v = this.obj[key];
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return this.fail(key, 'an object', v);
    return new Fields(this.file, v as Obj, `${this.at}${key}.`);
  }

  arr(key: string): unknown[] {
    const v = this.obj[key];
    return Array.isArray(v) ? v : this.fail(key, 'an array', v);
  }

  strArr(key: string): string[] {
    const a = this.arr(key);
    a.forEach((x, i) => { if (typeof x !== 'string') this.fail(`${key}[${i}]`, 'a string', x); });
    return a as string[];
  }

  fracMap(key: string): Record<string, number> {
    const f = this.obj_(key);
    const out: Record<string, number> = {};
    for (const k of Object.keys(f.obj)) out[k] = f.fracOrNull(k);
    return out;
  }

  version(): 1 {
    const v = this.obj.version;
    if (v !== 1) this.fail('version', '1 (this adafilter reads version 1 only)', v);
    return 1;
  }
}

function readText(file: string, what: string): string {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new InputError(`${file}: missing (${what})`);
  }
  if (!st.isFile()) throw new InputError(`${file}: not a file (${what})`);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`${file}: cannot read: ${(e as Error).message}`);
  }
}

function parseObject(text: string, where: string): Obj {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${where}: not valid JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new InputError(`${where}: expected a JSON object`);
  return v as Obj;
}

function readConfig(file: string): RunConfig {
  const f = new Fields(file, parseObject(readText(file, 'the run configuration'), file));
  const shots = f.obj.shots;
  if (shots !== null && shots !== undefined && !(typeof shots === 'number' && Number.isInteger(shots) && shots > 0)) f.fail('shots', 'a positive integer or null', shots);
  const methodOptions = f.obj.methodOptions === undefined ? {} : f.obj_('methodOptions').obj;
  const classes = f.strArr('classes');
  if (classes.length === 0) f.fail('classes', 'a non-empty array', classes);
  return {
    version: f.version(),
    backbone: f.str('backbone'),
    data: f.str('data'),
    method: f.str('method'),
    methodOptions,
    epochs: f.int('epochs', 1),
    batch: f.int('batch', 1),
    lr: f.num('lr'),
    weightDecay: f.num('weightDecay'),
    shots: (shots as number | null | undefined) ?? null,
    seed: f.int('seed'),
    classes,
    inputSize: f.obj.inputSize,
    channels: f.int('channels', 1),
    createdAt: typeof f.obj.createdAt === 'string' ? f.obj.createdAt : '',
  };
}

function readLog(file: string): EpochLog[] {
  const text = readText(file, 'the per-epoch log');
  const out: EpochLog[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    const where = `${file}:${i + 1}`;
    let obj: Obj;
    try {
      obj = parseObject(lines[i], where);
    } catch (e) {
      // A torn last line (no newline yet) is a run being appended to, or killed mid-write: the
      // trainer's own reader skips it too. A bad complete line is damage.
      if (lines.slice(i + 1).every((l) => l.trim() === '') && !text.endsWith('\n')) break;
      throw e;
    }
    const f = new Fields(where, obj);
    const e: EpochLog = {
      epoch: f.int('epoch', 1),
      steps: f.int('steps'),
      lr: f.num('lr'),
      trainLoss: f.numOrNull('trainLoss'),
      trainAcc: f.frac('trainAcc'),
      valLoss: f.numOrNull('valLoss'),
      valAcc: f.frac('valAcc'),
      imagesPerSec: f.num('imagesPerSec'),
      seconds: f.num('seconds'),
      time: typeof f.obj.time === 'string' ? f.obj.time : '',
      ...(f.obj.gates !== undefined && f.obj.gates !== null ? { gates: readGateLearning(f.obj_('gates')) } : {}),
    };
    // A resumed or concatenated log would draw a curve that doubles back on itself.
    const prev = out[out.length - 1];
    if (prev && e.epoch <= prev.epoch) throw new InputError(`${where}: epoch ${e.epoch} after epoch ${prev.epoch} (epochs should increase)`);
    out.push(e);
  }
  return out;
}

function readLearningStats(f: Fields): GateLearningStats {
  const orNull = (k: string) => (f.obj[k] === null || f.obj[k] === undefined ? null : f.num(k));
  return { fraction: f.fracOrNull('fraction'), meanAbsLogit: orNull('meanAbsLogit'), filtersVarying: f.fracOrNull('filtersVarying'), drift: orNull('drift') };
}

function readGateLearning(f: Fields): GateLearning {
  return {
    ...readLearningStats(f),
    layers: f.arr('layers').map((l, i) => {
      if (l === null || typeof l !== 'object' || Array.isArray(l)) return f.fail(`layers[${i}]`, 'an object', l);
      const lf = new Fields(f.file, l as Obj, `${f.at}layers[${i}].`);
      return { name: lf.str('name'), ...readLearningStats(lf) };
    }),
  };
}

function readLayer(f: Fields): LayerGateStats {
  return {
    name: f.str('name'),
    filters: f.int('filters', 1),
    fraction: f.fracOrNull('fraction'),
    exampleStd: f.numOrNull('exampleStd'),
    exampleMin: f.numOrNull('exampleMin'),
    exampleMax: f.numOrNull('exampleMax'),
    filtersVarying: f.fracOrNull('filtersVarying'),
    perClass: f.fracMap('perClass'),
  };
}

function readResult(file: string): RunResult | null {
  if (!fs.existsSync(file)) return null;
  const f = new Fields(file, parseObject(readText(file, 'the run result'), file));
  const val = f.obj_('val');
  const test = f.obj_('test');
  const params = f.obj_('params');
  let gates: GateStats | null = null;
  if (f.obj.gates !== null && f.obj.gates !== undefined) {
    const g = f.obj_('gates');
    gates = {
      examples: g.int('examples'),
      fraction: g.fracOrNull('fraction'),
      layers: g.arr('layers').map((l, i) => {
        if (l === null || typeof l !== 'object' || Array.isArray(l)) return g.fail(`layers[${i}]`, 'an object', l);
        return readLayer(new Fields(file, l as Obj, `gates.layers[${i}].`));
      }),
    };
  }
  return {
    method: f.str('method'),
    backbone: f.str('backbone'),
    data: f.str('data'),
    seed: f.int('seed'),
    epochs: f.int('epochs'),
    bestEpoch: f.int('bestEpoch'),
    val: { acc: val.frac('acc'), loss: val.numOrNull('loss') },
    test: { acc: test.frac('acc'), loss: test.numOrNull('loss'), perClass: test.obj.perClass === undefined ? {} : test.fracMap('perClass') },
    gates,
    params: { total: params.int('total'), trainable: params.int('trainable'), frozen: params.int('frozen') },
    trainSeconds: f.num('trainSeconds'),
  };
}

/** The similarity*.json files of a run folder, as analyze similarity --out writes them. */
function readSimilarity(dir: string): SimilarityRecord[] {
  return fs.readdirSync(dir).filter((n) => /^similarity.*\.json$/.test(n)).sort().map((n) => {
    const file = path.join(dir, n);
    const f = new Fields(file, parseObject(readText(file, 'the similarity analysis'), file));
    const metric = f.str('metric');
    if (metric !== 'cka' && metric !== 'svcca') f.fail('metric', "'cka' or 'svcca'", metric);
    const layers = f.arr('layers').map((l, i) => {
      if (l === null || typeof l !== 'object' || Array.isArray(l)) return f.fail(`layers[${i}]`, 'an object', l);
      const lf = new Fields(file, l as Obj, `layers[${i}].`);
      return { name: lf.str('name'), value: lf.numOrNull(metric) };
    });
    return { file, a: f.str('a'), b: f.str('b'), metric: metric as 'cka' | 'svcca', images: f.int('images', 1), layers };
  });
}

/** One run folder: run.json and log.jsonl must be there; result.json only once the run finished. */
export function readRun(dir: string): Run {
  const abs = path.resolve(dir);
  const config = readConfig(path.join(abs, 'run.json'));
  const log = readLog(path.join(abs, 'log.jsonl'));
  const result = readResult(path.join(abs, 'result.json'));
  if (result && result.method !== config.method) {
    throw new InputError(`${path.join(abs, 'result.json')}: method '${result.method}' but run.json says '${config.method}'`);
  }
  return { dir: abs, config, log, result, similarity: readSimilarity(abs) };
}

/** A compare folder: compare.json and every run it lists (paths relative to the folder). */
export function readCompare(dir: string): { info: CompareInfo; runDirs: string[] } {
  const abs = path.resolve(dir);
  const file = path.join(abs, 'compare.json');
  const f = new Fields(file, parseObject(readText(file, 'the comparison'), file));
  f.version();
  const seeds = f.arr('seeds');
  seeds.forEach((s, i) => { if (typeof s !== 'number' || !Number.isInteger(s)) f.fail(`seeds[${i}]`, 'an integer', s); });
  const runDirs = f.arr('runs').map((r, i) => {
    if (r === null || typeof r !== 'object' || Array.isArray(r)) return f.fail(`runs[${i}]`, 'an object', r);
    const rel = new Fields(file, r as Obj, `runs[${i}].`).str('dir');
    return path.resolve(abs, rel);
  });
  return { info: { dir: abs, backbone: f.str('backbone'), data: f.str('data'), methods: f.strArr('methods'), seeds: seeds as number[] }, runDirs };
}

/**
 * Reads every folder named: a folder with compare.json is a comparison (expanded to its runs), one
 * with run.json a single run. A run named twice (directly and through a comparison) counts once.
 */
export function readInputs(dirs: string[]): Inputs {
  if (dirs.length === 0) throw new InputError('expected at least one run or compare folder');
  const runs: Run[] = [];
  const compares: CompareInfo[] = [];
  const seen = new Set<string>();
  const addRun = (d: string) => {
    let key: string;
    try {
      key = fs.realpathSync(d);
    } catch {
      throw new InputError(`${d}: no such run folder`);
    }
    if (seen.has(key)) return;
    seen.add(key);
    runs.push(readRun(d));
  };
  for (const d of dirs) {
    const abs = path.resolve(d);
    let st: fs.Stats;
    try {
      st = fs.statSync(abs);
    } catch {
      throw new InputError(`${d}: no such folder`);
    }
    if (!st.isDirectory()) throw new InputError(`${d}: not a folder (expected a run or compare folder)`);
    if (fs.existsSync(path.join(abs, 'compare.json'))) {
      const { info, runDirs } = readCompare(abs);
      compares.push(info);
      for (const r of runDirs) addRun(r);
    } else if (fs.existsSync(path.join(abs, 'run.json'))) {
      addRun(abs);
    } else {
      throw new InputError(`${path.join(abs, 'run.json')}: missing (and no compare.json: not a run or compare folder)`);
    }
  }
  return { runs, compares };
}
