/**
 * `--init hybrid:LAYER` (Raghu et al., "Transfusion", 2019): the pretrained weights up to and
 * including LAYER, a fresh initialisation after it. The fresh part is exactly what `--backbone ARCH
 * --seed N` starts from (the architecture built right after manualSeed(N)), so a hybrid differs from
 * the pretrained run only above LAYER and from the random-init run only below it. BN statistics
 * above LAYER are reset with the weights: they described the pretrained layers' inputs.
 */
import { manualSeed } from '../engine/random';
import { InputError } from '../errors';
import { splitAt, underAny } from '../methods/layer-split';
import { BackboneChoice, rebuildArchitecture } from './backbones';

export type InitChoice = 'pretrained' | `hybrid:${string}`;

/** Checks the form of an --init value (the layer name is checked against the backbone later). */
export function checkInit(init: string): InitChoice {
  if (init === 'pretrained' || (/^hybrid:./.test(init))) return init as InitChoice;
  throw new InputError(`init: expected pretrained or hybrid:LAYER (a layer from 'adafilter models inspect'), got '${init}'`);
}

/**
 * Re-initialises `bb.model` above the layer of `init` (in place) from a model of the same
 * architecture built after manualSeed(seed). That build is the one a weights file's loading makes
 * (openBackbone builds the architecture after the trainer's manualSeed, then loads into it), so the
 * generator ends where a pretrained run has it and the new head is initialised as there.
 */
export function applyInit(bb: BackboneChoice, init: InitChoice, seed: number, numClasses: number): void {
  if (init === 'pretrained') return;
  const layer = init.slice('hybrid:'.length);
  if (!bb.pretrained) throw new InputError(`--init ${init}: the backbone '${bb.spec}' is randomly initialised already; hybrid needs pretrained weights (default or a weights file)`);
  const { above } = splitAt(bb.model, layer, '--init hybrid');
  manualSeed(seed);
  const fresh = rebuildArchitecture(bb.arch, numClasses, bb.archOptions);
  try {
    const state = new Map([...fresh.stateDict()].filter(([name]) => underAny(name, above)));
    bb.model.loadStateDict(state, false);
  } finally {
    fresh.dispose();
  }
  bb.description += `, re-initialised after ${layer} (seed ${seed})`;
}
