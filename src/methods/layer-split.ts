/**
 * A backbone split at a named layer, for the pretraining study's configurations (Raghu et al.,
 * "Transfusion", 2019): `--freeze-through LAYER` freezes the part up to LAYER, `--init hybrid:LAYER`
 * keeps it pretrained and re-initialises the rest. The names are `stem` and the block names that
 * `adafilter models inspect` lists as cut points (layer1.0 … for ResNets, features.1 … for
 * MobileNetV2). The split is by state-dict prefix, so it covers parameters and BN statistics alike.
 */
import { Module } from '../nn/module';
import type { Backbone as ModelBackbone } from '../models/backbone';
import { InputError } from '../errors';

export interface LayerSplit {
  layer: string;
  /** State-dict prefixes of the stem and of every block up to and including `layer`. */
  below: string[];
  /** Prefixes of the blocks after `layer` and the convolutions after the last block (MobileNetV2's 1×1 to 1280); the classifier is neither. */
  above: string[];
}

function asModelBackbone(m: Module, flag: string): ModelBackbone {
  const b = m as unknown as Partial<ModelBackbone>;
  if (typeof b.blocks !== 'function' || typeof b.convBns !== 'function') {
    throw new InputError(`${flag}: the backbone ${m.constructor.name} does not list its blocks`);
  }
  return m as unknown as ModelBackbone;
}

/** The names a split accepts, in forward order: `stem`, then every block. */
export function splitNames(backbone: Module): string[] {
  const b = asModelBackbone(backbone, 'layer names');
  return ['stem', ...b.blocks().map((x) => x.name)];
}

/** Splits `backbone` after `layer`; an unknown name is an InputError listing the valid ones (`flag` says who asked). */
export function splitAt(backbone: Module, layer: string, flag: string): LayerSplit {
  const b = asModelBackbone(backbone, flag);
  const names = splitNames(b);
  const at = names.indexOf(layer);
  if (at < 0) throw new InputError(`${flag}: '${layer}' is not a layer of this ${b.family} backbone; valid: ${names.join(', ')}`);
  const convs = b.convBns();
  const stem = convs.filter((c) => c.role === 'stem').flatMap((c) => [c.convName, c.bnName]);
  const head = convs.filter((c) => c.role === 'head').flatMap((c) => [c.convName, c.bnName]);
  const blocks = b.blocks().map((x) => x.name);
  return { layer, below: [...stem, ...blocks.slice(0, at)], above: [...blocks.slice(at), ...head] };
}

/** True when state-dict name `name` lies under one of `prefixes`. */
export function underAny(name: string, prefixes: string[]): boolean {
  return prefixes.some((p) => name === p || name.startsWith(`${p}.`));
}
