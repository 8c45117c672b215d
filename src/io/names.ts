import { Module } from '../nn/module';
import { MobileNetV2, MOBILENETV2_SETTING } from '../models/mobilenetv2';

/** Name conventions a weight file can use. */
export type NameConvention = 'auto' | 'torchvision' | 'timm';

/**
 * timm's MobileNetV2 names → torchvision's (ours). timm groups blocks by stage (blocks.S.J) and
 * names layers conv_pw / conv_dw / conv_pwl; the first block (t = 1) is a DepthwiseSeparableConv
 * with conv_dw / conv_pw. Returns null for a name it does not know.
 */
export function timmMobileNetV2Name(name: string): string | null {
  let m = /^(conv_stem|bn1|conv_head|bn2)\.(.+)$/.exec(name);
  if (m) {
    const base = { conv_stem: 'features.0.0', bn1: 'features.0.1', conv_head: 'features.18.0', bn2: 'features.18.1' }[m[1]];
    return `${base}.${m[2]}`;
  }
  m = /^classifier\.(weight|bias)$/.exec(name);
  if (m) return `classifier.1.${m[1]}`;
  m = /^blocks\.(\d+)\.(\d+)\.([a-z_0-9]+)\.(.+)$/.exec(name);
  if (!m) return null;
  const stage = Number(m[1]), j = Number(m[2]);
  if (stage >= MOBILENETV2_SETTING.length || j >= MOBILENETV2_SETTING[stage][2]) return null;
  const idx = 1 + MOBILENETV2_SETTING.slice(0, stage).reduce((a, s) => a + s[2], 0) + j;
  const layers: Record<string, string> = stage === 0
    ? { conv_dw: 'conv.0.0', bn1: 'conv.0.1', conv_pw: 'conv.1', bn2: 'conv.2' }
    : { conv_pw: 'conv.0.0', bn1: 'conv.0.1', conv_dw: 'conv.1.0', bn2: 'conv.1.1', conv_pwl: 'conv.2', bn3: 'conv.3' };
  const l = layers[m[3]];
  return l ? `features.${idx}.${l}.${m[4]}` : null;
}

/** Which convention a set of names uses, for a model. */
export function detectConvention(names: string[], model: Module): 'torchvision' | 'timm' {
  if (model instanceof MobileNetV2 && names.some((n) => n.startsWith('conv_stem.') || n.startsWith('blocks.'))) return 'timm';
  return 'torchvision';
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
  const out = new Map<string, string>();
  names.forEach((n, i) => {
    const b = base[i];
    out.set(n, conv === 'timm' && model instanceof MobileNetV2 ? timmMobileNetV2Name(b) ?? b : b);
  });
  return out;
}
