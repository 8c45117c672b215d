/**
 * What `--backbone` names: the shipped pretrained default, an architecture with random weights, or
 * a weights file. Each answer carries the preprocessing its weights expect, so fine-tuning feeds the
 * network what it was trained on.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Backbone } from '../models/backbone';
import { buildModel, modelNames, modelSpec } from '../models/registry';
import { loadInto, readSafetensorsHeader } from '../io/safetensors';
import { Stats } from '../data/transforms';
import { InputError } from '../errors';

/** The package root (this file is dist/src/train/backbones.js). */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');
export const DEFAULT_WEIGHTS = path.join(PACKAGE_ROOT, 'weights', 'default.safetensors');

/** Input the weights expect: side, channels and normalisation of the 0..1 pixels. */
export interface InputSpec {
  size: number;
  channels: 1 | 3;
  /** 'dataset': statistics of the target's training split (for weights that were not pretrained). */
  normalize: Stats | 'dataset';
}

export interface BackboneChoice {
  model: Backbone;
  arch: string;
  /** What the user asked for, as they wrote it (kept in run.json). */
  spec: string;
  pretrained: boolean;
  input: InputSpec;
  /** One line for logs: where the weights came from. */
  description: string;
}

/** Metadata keys our weight files carry (safetensors __metadata__, string values). */
export const META = { arch: 'adafilter.arch', input: 'adafilter.input', card: 'adafilter.card' } as const;

function parseInput(raw: string | undefined, file: string, arch: string): InputSpec {
  if (raw === undefined) return { size: modelSpec(arch).inputSize, channels: 3, normalize: 'dataset' };
  let v: unknown;
  try { v = JSON.parse(raw); } catch { throw new InputError(`${file}: metadata ${META.input} is not JSON`); }
  const o = v as Partial<InputSpec>;
  const okStats = (s: unknown): s is Stats => typeof s === 'object' && s !== null
    && Array.isArray((s as Stats).mean) && Array.isArray((s as Stats).std)
    && [...(s as Stats).mean, ...(s as Stats).std].every((x) => typeof x === 'number' && Number.isFinite(x))
    && (s as Stats).std.every((x) => x > 0);
  if (!Number.isInteger(o.size) || o.size! < 8 || o.size! > 1024 || (o.channels !== 1 && o.channels !== 3)
    || !(o.normalize === 'dataset' || okStats(o.normalize))) {
    throw new InputError(`${file}: metadata ${META.input} must be {size, channels: 1|3, normalize: {mean, std} | "dataset"}`);
  }
  return { size: o.size!, channels: o.channels, normalize: o.normalize! };
}

/** Loads an adafilter weights file (arch and input in its metadata, or arch given as ARCH:FILE). */
function fromFile(file: string, archGiven: string | null, numClasses: number, spec: string): BackboneChoice {
  if (!fs.existsSync(file)) throw new InputError(`${file}: no such weights file`);
  const meta = readSafetensorsHeader(file).metadata ?? {};
  const arch = archGiven ?? meta[META.arch];
  if (!arch) throw new InputError(`${file}: does not say its architecture; write --backbone ARCH:${file} (architectures: ${modelNames().join(', ')})`);
  const model = buildModel(arch, numClasses);
  loadInto(model, file, { skipClassifier: true, strict: true });
  return {
    model, arch, spec, pretrained: true, input: parseInput(meta[META.input], file, arch),
    description: `${arch} with weights from ${file}`,
  };
}

/**
 * `default` → the shipped pretrained backbone; `ARCH` → random initialisation; `FILE.safetensors`
 * or `ARCH:FILE` → that architecture with the file's weights (classifier left out: new classes).
 */
export function openBackbone(spec: string, numClasses: number): BackboneChoice {
  if (spec === 'default') {
    if (!fs.existsSync(DEFAULT_WEIGHTS)) {
      throw new InputError(`the shipped backbone is missing (${DEFAULT_WEIGHTS}); rebuild it with the command in weights/README.md`);
    }
    const c = fromFile(DEFAULT_WEIGHTS, null, numClasses, spec);
    return { ...c, description: `the shipped backbone (${c.arch}, weights/README.md)` };
  }
  if (modelNames().includes(spec)) {
    const s = modelSpec(spec);
    return {
      model: buildModel(spec, numClasses), arch: spec, spec, pretrained: false,
      input: { size: s.inputSize, channels: 3, normalize: 'dataset' }, description: `${spec}, randomly initialised`,
    };
  }
  const colon = spec.indexOf(':');
  if (colon > 0 && modelNames().includes(spec.slice(0, colon))) return fromFile(spec.slice(colon + 1), spec.slice(0, colon), numClasses, spec);
  if (spec.endsWith('.safetensors')) return fromFile(spec, null, numClasses, spec);
  throw new InputError(`unknown backbone '${spec}' (use default, an architecture — ${modelNames().join(', ')} — or a .safetensors file, optionally as ARCH:FILE)`);
}

/** The same architecture, randomly initialised: a run folder's weights are then loaded into it. */
export function rebuildArchitecture(arch: string, numClasses: number): Backbone {
  return buildModel(arch, numClasses);
}
