import { Module } from '../nn/module';

/** Name conventions a weight file can use. */
export type NameConvention = 'auto' | 'torchvision' | 'timm';

/**
 * A family whose timm names differ from torchvision's maps them itself (MobileNetV2, beside its
 * class); timm's ResNets use torchvision's names already.
 */
interface TimmNamed {
  fromTimmName(name: string): string | null;
  usesTimmNames(names: string[]): boolean;
}

function timmNamed(model: Module): TimmNamed | null {
  const m = model as Partial<TimmNamed>;
  return typeof m.fromTimmName === 'function' && typeof m.usesTimmNames === 'function' ? (m as TimmNamed) : null;
}

/** Which convention a set of names uses, for a model. */
export function detectConvention(names: string[], model: Module): 'torchvision' | 'timm' {
  return timmNamed(model)?.usesTimmNames(names) ? 'timm' : 'torchvision';
}

/**
 * Maps the names of a weight file to the model's state-dict names. A common 'module.' prefix
 * (DataParallel checkpoints) is removed. timm ResNets use torchvision's names already.
 * Returns file name → model name (the model name is the file name when there is no rule).
 */
export function mapNames(names: string[], model: Module, from: NameConvention = 'auto'): Map<string, string> {
  const strip = names.length > 0 && names.every((n) => n.startsWith('module.'));
  const base = names.map((n) => (strip ? n.slice('module.'.length) : n));
  const conv = from === 'auto' ? detectConvention(base, model) : from;
  const timm = conv === 'timm' ? timmNamed(model) : null;
  const out = new Map<string, string>();
  names.forEach((n, i) => {
    const b = base[i];
    out.set(n, timm ? timm.fromTimmName(b) ?? b : b);
  });
  return out;
}
