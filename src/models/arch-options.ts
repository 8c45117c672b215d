/**
 * What a registry name cannot say about an imported architecture, so that a run (run.json) or a
 * weights file (its metadata) can rebuild it: BatchNorm eps is not part of a state dict, and Keras
 * pads stride-2 convs asymmetrically and strides its Bottlenecks on the 1×1 conv. Absent:
 * `buildModel(arch, n)` as is.
 *
 * Each family owns its part (an ArchFamily beside its class: the options it reads from a model,
 * checks in a file and builds from); this file adds the BN eps every family shares and asks the
 * family table below. A new family adds its line there.
 */
import { Conv2d } from '../nn/conv';
import { BatchNorm2d } from '../nn/batchnorm';
import { InputError } from '../errors';
import type { Backbone } from './backbone';
import { buildModel, modelNames } from './registry';
import { isPositive } from './option-checks';
import { RESNET_ARCH, ResNetArchOptions } from './resnet';
import { MOBILENETV2_ARCH, MobileNetV2ArchOptions } from './mobilenetv2';
import { EFFICIENTNET_ARCH, EfficientNetArchOptions } from './efficientnet';

/** BN eps of every conv+BN pair: one number when they agree, else per BN name as well. */
export interface BnEpsOptions {
  bnEps: number;
  bnEpsByLayer?: Record<string, number>;
}

export type ArchOptions = (MobileNetV2ArchOptions | ResNetArchOptions | EfficientNetArchOptions) & BnEpsOptions;

/** A family's part of the architecture options. */
export interface ArchFamily<O extends { family: string }> {
  readonly family: O['family'];
  /**
   * Null when `model` is not of this family. Else its options, the registry name it would have
   * (`name`; `fallback` when the registry has no such name), and whether `buildModel(name)` builds
   * it as it is apart from BN eps.
   */
  describe(model: Backbone, arch: string): { options: O; name: string; fallback: string; asBuilt: boolean } | null;
  /** Checks the family's fields of options read from a file; `bad` throws the InputError. */
  check(o: Record<string, unknown>, bad: (what: string) => never): void;
  /** The architecture, randomly initialised; BN eps that differ from what it built are set afterwards, per layer. */
  build(o: O & BnEpsOptions, numClasses: number): Backbone;
}

const FAMILIES: ArchFamily<ArchOptions>[] = [MOBILENETV2_ARCH, RESNET_ARCH, EFFICIENTNET_ARCH] as ArchFamily<ArchOptions>[];

function bnEpsOf(model: Backbone): BnEpsOptions {
  const cbs = model.convBns();
  const eps = cbs.map((c) => c.bn.eps);
  if (eps.every((e) => e === eps[0])) return { bnEps: eps[0] };
  return { bnEps: eps[0], bnEpsByLayer: Object.fromEntries(cbs.map((c) => [c.bnName, c.bn.eps])) };
}

/** The registry name and, where the model differs from `buildModel(name)` in anything the weights do not carry, the options that rebuild it. */
export function describeArchitecture(model: Backbone, arch: string): { arch: string; archOptions?: ArchOptions } {
  for (const f of FAMILIES) {
    const d = f.describe(model, arch);
    if (!d) continue;
    const eps = bnEpsOf(model);
    const known = modelNames().includes(d.name);
    if (known && d.asBuilt && !eps.bnEpsByLayer && eps.bnEps === 1e-5) return { arch: d.name };
    return { arch: known ? d.name : d.fallback, archOptions: { ...d.options, ...eps } };
  }
  return { arch };
}

/** Checks architecture options read from a file (run.json or weights metadata): anyone may have written them. */
export function parseArchOptions(raw: string | unknown, where: string): ArchOptions {
  let v: unknown = raw;
  if (typeof raw === 'string') {
    try { v = JSON.parse(raw); } catch { throw new InputError(`${where}: not JSON`); }
  }
  const bad = (what: string): never => { throw new InputError(`${where}: ${what}`); };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('must be an object');
  const o = v as Record<string, unknown>;
  if (!isPositive(o.bnEps) || (o.bnEps as number) > 1) bad('bnEps must be a number in (0, 1]');
  if (o.bnEpsByLayer !== undefined) {
    const m = o.bnEpsByLayer;
    if (typeof m !== 'object' || m === null || Array.isArray(m) || !Object.values(m).every((e) => isPositive(e) && e <= 1)) bad('bnEpsByLayer must map BN names to numbers in (0, 1]');
  }
  const family = FAMILIES.find((f) => f.family === o.family);
  if (!family) return bad(`family must be ${FAMILIES.map((f) => `'${f.family}'`).join(' or ')}`);
  family.check(o, bad);
  return o as unknown as ArchOptions;
}

/**
 * The same architecture, randomly initialised: a run folder's or a weights file's weights are then
 * loaded into it. `archOptions` (run.json / file metadata) rebuilds imports the registry cannot name.
 */
export function rebuildArchitecture(arch: string, numClasses: number, archOptions?: ArchOptions): Backbone {
  if (!archOptions) return buildModel(arch, numClasses);
  const o = parseArchOptions(archOptions, `architecture options of ${arch}`);
  const model = FAMILIES.find((f) => f.family === o.family)!.build(o, numClasses);
  for (const cb of model.convBns()) {
    const eps = o.bnEpsByLayer?.[cb.bnName] ?? o.bnEps;
    if (cb.bn.eps === eps) continue;
    const bn = new BatchNorm2d(cb.bn.numFeatures, { eps, momentum: cb.bn.momentum });
    const live = (cb.parent as unknown as Record<string, Conv2d>)[cb.convKey];
    cb.replace(live, bn);
    cb.bn.dispose();
  }
  return model;
}
