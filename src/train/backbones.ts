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
import { mapNames } from '../io/names';
import { importTfjs, loadNsfwjsMobileNetV2, NSFWJS_PREPROCESS, Preprocess, TfjsImport } from '../io/tfjs-import';
import { importOnnx } from '../io/onnx/import';
import { ResolvedTransform, Stats, checkStats, normalizeStats, resolveTransform } from '../data/transforms';
import { Dataset } from '../data/dataset';
import { datasetStats } from '../data/loader';
import { InputError } from '../errors';

import { DEFAULT_WEIGHTS, PACKAGE_ROOT, shippedBackbone, ShippedBackbone } from './shipped';

import { ArchOptions, describeArchitecture, parseArchOptions, rebuildArchitecture } from '../models/arch-options';

export { DEFAULT_WEIGHTS, PACKAGE_ROOT };
// Architecture options live with the families (models/arch-options.ts); runs and imports use them through here too.
export { describeArchitecture, parseArchOptions, rebuildArchitecture };
export type { ArchOptions };

function shippedFile(s: ShippedBackbone): string {
  if (!fs.existsSync(s.file)) throw new InputError(`the shipped backbone '${s.name}' is missing (${s.file}); build it with: ${s.build}`);
  return s.file;
}

/** Input the weights expect: side, channels and normalisation of the 0..1 pixels. */
export interface InputSpec {
  size: number;
  channels: 1 | 3;
  /** 'dataset': statistics of the target's training split (for weights that were not pretrained). */
  normalize: Stats | 'dataset';
}

/**
 * The preprocessing a run feeds the network: the size, channels and normalisation the weights
 * record, with 'dataset' resolved from the target's training split.
 */
export async function inputTransform(input: InputSpec, ds: Dataset): Promise<ResolvedTransform> {
  const stats = input.normalize === 'dataset' ? await datasetStats(ds, input.channels) : input.normalize;
  return resolveTransform({ size: input.size, channels: input.channels, normalize: stats });
}

export interface BackboneChoice {
  model: Backbone;
  arch: string;
  /** Present when `arch` alone does not rebuild the model (imports from Keras / TF.js). */
  archOptions?: ArchOptions;
  /** What the user asked for, as they wrote it (kept in run.json). */
  spec: string;
  pretrained: boolean;
  input: InputSpec;
  /** One line for logs: where the weights came from. */
  description: string;
}

/** Metadata keys our weight files carry (safetensors __metadata__, string values). */
export const META = { arch: 'adafilter.arch', archOptions: 'adafilter.archOptions', input: 'adafilter.input', card: 'adafilter.card' } as const;

/**
 * The input of a weights file: its `adafilter.input` metadata, else the convention of the names it
 * carries — a file without our metadata holds torchvision or timm weights (that is what loadInto
 * reads), which were trained on ImageNet-normalised inputs.
 */
function parseInput(raw: string | undefined, file: string, arch: string, archOptions?: ArchOptions): InputSpec {
  if (raw === undefined) return { size: archOptions ? 224 : modelSpec(arch).inputSize, channels: 3, normalize: normalizeStats('imagenet') };
  let v: unknown;
  try { v = JSON.parse(raw); } catch { throw new InputError(`${file}: metadata ${META.input} is not JSON`); }
  const o = v as Partial<InputSpec>;
  const bad = () => new InputError(`${file}: metadata ${META.input} must be {size, channels: 1|3, normalize: {mean, std} | "dataset"}`);
  if (typeof o !== 'object' || o === null || !Number.isInteger(o.size) || o.size! < 8 || o.size! > 1024 || (o.channels !== 1 && o.channels !== 3)) throw bad();
  let normalize: InputSpec['normalize'];
  try { normalize = o.normalize === 'dataset' ? 'dataset' : checkStats(o.normalize, file); } catch { throw bad(); }
  return { size: o.size!, channels: o.channels, normalize };
}

/** Loads an adafilter weights file (arch and input in its metadata, or arch given as ARCH:FILE). */
function fromFile(file: string, archGiven: string | null, numClasses: number, spec: string): BackboneChoice {
  if (!fs.existsSync(file)) throw new InputError(`${file}: no such weights file`);
  const meta = readSafetensorsHeader(file).metadata ?? {};
  const arch = archGiven ?? meta[META.arch];
  if (!arch) throw new InputError(`${file}: does not say its architecture; write --backbone ARCH:${file} (architectures: ${modelNames().join(', ')})`);
  const archOptions = archGiven === null && meta[META.archOptions] !== undefined ? parseArchOptions(meta[META.archOptions], `${file}: metadata ${META.archOptions}`) : undefined;
  const model = rebuildArchitecture(arch, numClasses, archOptions);
  try {
    loadInto(model, file, { skipClassifier: true, strict: true });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return {
    model, arch, archOptions, spec, pretrained: true, input: parseInput(meta[META.input], file, arch, archOptions),
    description: `${arch} with weights from ${file}`,
  };
}

/** The input a TF.js import expects: its preprocessing as normalisation of 0..1 pixels. */
function tfjsInput(r: TfjsImport): InputSpec {
  const p: Preprocess = r.preprocess;
  const channels = r.model.convBns()[0].conv.inChannels === 1 ? 1 : 3;
  return { size: 224, channels, normalize: { mean: [...p.mean], std: [...p.std] } };
}

function fromTfjs(file: string, numClasses: number, spec: string): BackboneChoice {
  const r = importTfjs(file, { numClasses });
  const { arch, archOptions } = describeArchitecture(r.model, r.arch);
  return { model: r.model, arch, archOptions, spec, pretrained: true, input: tfjsInput(r), description: `${arch} (Keras) with weights from ${file}` };
}

/** nsfwjs's Keras MobileNetV2 (ImageNet-initialised, then tuned on its own 5 classes); x/255 input. */
export function openNsfwjs(numClasses: number, spec = 'nsfwjs'): BackboneChoice {
  const r = loadNsfwjsMobileNetV2(numClasses);
  const { arch, archOptions } = describeArchitecture(r.model, r.arch);
  return {
    model: r.model, arch, archOptions, spec, pretrained: true,
    input: { size: 224, channels: 3, normalize: { mean: [...NSFWJS_PREPROCESS.mean], std: [...NSFWJS_PREPROCESS.std] } },
    description: 'nsfwjs MobileNetV2 (Keras, ImageNet-derived; its 5-class head replaced)',
  };
}

/**
 * The registry architecture an ONNX file fits: torch.onnx.export renames tensors, so the graph's
 * convolutions (count, kernels, strides, shapes) decide; the first architecture that loads wins.
 */
export function importOnnxAnyArch(file: string): { model: Backbone; arch: string } {
  const reasons = new Map<string, string>();
  for (const arch of modelNames()) {
    try {
      return { model: importOnnx(file, arch), arch };
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      reasons.set(arch, e.message);
    }
  }
  // A problem with the file itself reads the same for every architecture: report it as it is.
  const distinct = new Set(reasons.values());
  if (distinct.size === 1) throw new InputError([...distinct][0]);
  throw new InputError(`${file}: matches none of the architectures (${modelNames().join(', ')}); name one as ARCH:${file}`);
}

/** ONNX files are torch.onnx.export files of torchvision-style networks: ImageNet-normalised inputs. */
function onnxInput(arch: string): InputSpec {
  return { size: modelSpec(arch).inputSize, channels: 3, normalize: normalizeStats('imagenet') };
}

function fromOnnx(file: string, archGiven: string | null, numClasses: number, spec: string): BackboneChoice {
  if (!fs.existsSync(file)) throw new InputError(`${file}: no such ONNX file`);
  const { model, arch } = archGiven ? { model: importOnnx(file, archGiven), arch: archGiven } : importOnnxAnyArch(file);
  // The file's classifier belongs to its own task; the new task gets a fresh head.
  model.resetClassifier(numClasses);
  model.train();
  return {
    model, arch, spec, pretrained: true, input: onnxInput(arch),
    description: `${arch} with weights from ${file} (ONNX)`,
  };
}

/** A TF.js LayersModel: model.json, a folder holding one, or nsfwjs's wrapped model.min.js. */
export function isTfjsPath(p: string): boolean {
  if (p.endsWith('.json') || p.endsWith('model.min.js')) return true;
  try {
    return fs.statSync(p).isDirectory() && (fs.existsSync(path.join(p, 'model.json')) || fs.existsSync(path.join(p, 'model.min.js')));
  } catch {
    return false;
  }
}

/** What a backbone spec names, read once (parseBackboneSpec) for both openBackbone and openBackboneAsIs. */
export type BackboneSpec =
  | { kind: 'shipped'; shipped: ShippedBackbone }
  | { kind: 'nsfwjs' }
  | { kind: 'architecture'; arch: string }
  /**
   * A file, with the architecture an `ARCH:` prefix gave (else null) and the format its name says
   * (null: none this reads, or a path that does not exist).
   */
  | { kind: 'file'; file: string; arch: string | null; format: 'safetensors' | 'onnx' | 'tfjs' | null };

/**
 * `default` (or another shipped name), `nsfwjs`, `ARCH`, or `[ARCH:]FILE` where FILE is a
 * .safetensors, a .onnx, or a TF.js model.json / model folder.
 */
export function parseBackboneSpec(spec: string): BackboneSpec {
  const shipped = shippedBackbone(spec);
  if (shipped) return { kind: 'shipped', shipped };
  if (spec === 'nsfwjs') return { kind: 'nsfwjs' };
  if (modelNames().includes(spec)) return { kind: 'architecture', arch: spec };
  const colon = spec.indexOf(':');
  const prefixed = colon > 0 && modelNames().includes(spec.slice(0, colon));
  const file = prefixed ? spec.slice(colon + 1) : spec;
  const format = file.endsWith('.safetensors') ? 'safetensors' : file.endsWith('.onnx') ? 'onnx' : isTfjsPath(file) ? 'tfjs' : null;
  return { kind: 'file', file, arch: prefixed ? spec.slice(0, colon) : null, format };
}

/**
 * `default` → the shipped pretrained backbone; `nsfwjs` → nsfwjs's MobileNetV2; `ARCH` → random
 * initialisation; `FILE.safetensors` or `ARCH:FILE` → that architecture with the file's weights;
 * `[ARCH:]FILE.onnx` → an ONNX export's weights; `model.json` / a TF.js model folder → a Keras
 * model. The classifier is always left out: new classes.
 */
export function openBackbone(spec: string, numClasses: number): BackboneChoice {
  const s = parseBackboneSpec(spec);
  switch (s.kind) {
    case 'shipped': {
      const c = fromFile(shippedFile(s.shipped), null, numClasses, spec);
      return { ...c, description: `the shipped backbone '${spec}' (${c.arch}, weights/${path.basename(s.shipped.file, '.safetensors')}.md)` };
    }
    case 'nsfwjs': return openNsfwjs(numClasses);
    case 'architecture': {
      const m = modelSpec(s.arch);
      return {
        model: buildModel(s.arch, numClasses), arch: s.arch, spec, pretrained: false,
        input: { size: m.inputSize, channels: 3, normalize: 'dataset' }, description: `${s.arch}, randomly initialised`,
      };
    }
    case 'file':
      // ARCH:FILE names weights for that architecture: an ONNX export's, or else a safetensors file's whatever its name.
      if (s.arch !== null) return s.format === 'onnx' ? fromOnnx(s.file, s.arch, numClasses, spec) : fromFile(s.file, s.arch, numClasses, spec);
      if (s.format === 'safetensors') return fromFile(s.file, null, numClasses, spec);
      if (s.format === 'onnx') return fromOnnx(s.file, null, numClasses, spec);
      if (s.format === 'tfjs') return fromTfjs(s.file, numClasses, spec);
      throw new InputError(`unknown backbone '${spec}' (use default, nsfwjs, an architecture — ${modelNames().join(', ')} — a .safetensors or .onnx file, optionally as ARCH:FILE, or a TF.js model.json)`);
  }
}

/** A backbone with its own classifier where the source has a usable one (models import / inspect / export). */
export interface BackboneAsIs {
  model: Backbone;
  arch: string;
  archOptions?: ArchOptions;
  input: InputSpec;
  /** False when the classifier is fresh (random): the source had none, or its head cannot be ours. */
  hasHead: boolean;
  /** safetensors metadata of the source file, when it is one. */
  metadata: Record<string, string> | null;
  description: string;
}

/** Classes of a safetensors file's classifier for `model`'s naming (null: the file has no classifier). */
function fileHeadClasses(file: string, model: Backbone): number | null {
  const header = readSafetensorsHeader(file);
  const target = `${model.classifier().name}.weight`;
  const names = mapNames(header.entries.map((e) => e.name), model, 'auto');
  const e = header.entries.find((x) => names.get(x.name) === target);
  return e && e.shape.length === 2 && e.shape[0] >= 1 ? e.shape[0] : null;
}

function safetensorsAsIs(file: string, archGiven: string | null, label: string): BackboneAsIs {
  if (!fs.existsSync(file)) throw new InputError(`${file}: no such weights file`);
  const meta = readSafetensorsHeader(file).metadata;
  const arch = archGiven ?? meta?.[META.arch];
  if (!arch) throw new InputError(`${file}: does not say its architecture; give it as --arch A or ARCH:${file} (architectures: ${modelNames().join(', ')})`);
  const archOptions = archGiven === null && meta?.[META.archOptions] !== undefined ? parseArchOptions(meta[META.archOptions], `${file}: metadata ${META.archOptions}`) : undefined;
  const model = rebuildArchitecture(arch, 1, archOptions);
  try {
    const classes = fileHeadClasses(file, model);
    if (classes !== null) model.resetClassifier(classes);
    loadInto(model, file, { skipClassifier: classes === null, strict: true });
    model.eval();
    return {
      model, arch, archOptions, input: parseInput(meta?.[META.input], file, arch, archOptions), hasHead: classes !== null,
      metadata: meta, description: label,
    };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * What `spec` names (as openBackbone reads it), in eval mode and with the source's own classifier
 * where it has one; Keras heads (nsfwjs's 256-128-5 MLP) are not ours and are left out.
 */
export function openBackboneAsIs(spec: string, o: { arch?: string } = {}): BackboneAsIs {
  const archGiven = o.arch ?? null;
  if (archGiven !== null) modelSpec(archGiven);
  const headless = (c: BackboneChoice): BackboneAsIs => {
    c.model.eval();
    return { model: c.model, arch: c.arch, archOptions: c.archOptions, input: c.input, hasHead: false, metadata: null, description: c.description };
  };
  const s = parseBackboneSpec(spec);
  switch (s.kind) {
    case 'shipped': return safetensorsAsIs(shippedFile(s.shipped), null, `the shipped backbone '${spec}'`);
    case 'nsfwjs': return headless(openNsfwjs(1000));
    case 'architecture': return headless(openBackbone(spec, 1000));
    case 'file': {
      const { file } = s, arch = s.arch ?? archGiven;
      if (s.format === 'safetensors') return safetensorsAsIs(file, arch, `weights from ${file}`);
      if (s.format === 'onnx') {
        if (!fs.existsSync(file)) throw new InputError(`${file}: no such ONNX file`);
        const r = arch ? { model: importOnnx(file, arch), arch } : importOnnxAnyArch(file);
        return { ...r, input: onnxInput(r.arch), hasHead: true, metadata: null, description: `${r.arch} from ${file} (ONNX)` };
      }
      if (s.format === 'tfjs') return headless(fromTfjs(file, 1000, file));
      if (!fs.existsSync(file)) throw new InputError(`unknown model '${spec}' (use default, nsfwjs, an architecture — ${modelNames().join(', ')} — a .safetensors, .onnx or TF.js model.json file, or a run folder)`);
      throw new InputError(`${file}: not a model format this reads (.safetensors, .onnx, a TF.js model.json or its folder)`);
    }
  }
}
