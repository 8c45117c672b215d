/**
 * `pretrain`: trains an architecture from scratch on a large source task (standard training, the
 * finetune method on random weights) and writes its backbone weights with everything needed to
 * use them later: architecture, input preprocessing and a model card, in the file's metadata and
 * as Markdown beside it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sourceLicense } from '../data/registry';
import { decodeSafetensors, saveSafetensors } from '../io/safetensors';
import { writeFileAtomic } from '../io/atomic';
import { InputError } from '../errors';
import { Tensor } from '../engine/tensor';
import { fineTune } from './trainer';
import { TrainOptions } from './options';
import type { Precision } from '../engine/precision';
import { META } from './backbones';
import { RUN_FILES, readLog, readRunConfig } from './run-folder';
import { writesOutputs } from './data-parallel';

export interface PretrainOptions extends Omit<TrainOptions, 'backbone' | 'method' | 'methodOptions' | 'shots'> {
  arch: string;
  /** The weights file to write (e.g. weights/default.safetensors); a .md model card goes beside it. */
  weights: string;
}

export interface ModelCard {
  arch: string;
  source: string;
  classes: number;
  classNames: string[];
  epochs: number;
  seed: number;
  trainImages: number | null;
  valAcc: number;
  testAcc: number;
  input: { size: number; channels: number; mean: number[]; std: number[] };
  command: string;
  createdAt: string;
  trainSeconds: number;
  /** Where it was trained: CPU model and cores, and the intra-op threads the run used. */
  machine?: string;
  threads?: number;
  /** The sources' licences (the weights derive from them). */
  license?: string;
  /** The arithmetic of the training steps (cards written before it existed: fp32). */
  precision?: Precision;
}

/** The model card of the weights written; null on a data-parallel job's ranks other than 0, which write nothing. */
export async function pretrain(o: PretrainOptions, command: string): Promise<ModelCard | null> {
  if (!o.weights.endsWith('.safetensors')) throw new InputError(`--out: the weights file must end in .safetensors, got '${o.weights}'`);
  const { arch, weights, ...rest } = o;
  const result = await fineTune({ ...rest, backbone: arch, method: 'finetune' });
  if (!writesOutputs()) return null;
  const cfg = readRunConfig(result.dir);
  const log = readLog(result.dir);
  const card: ModelCard = {
    arch, source: cfg.data, classes: cfg.classes.length, classNames: cfg.classes, epochs: cfg.epochs, seed: cfg.seed,
    trainImages: null, valAcc: result.val.acc, testAcc: result.test.acc,
    input: { size: cfg.inputSize, channels: cfg.channels, ...cfg.input.resolvedStats },
    command, createdAt: new Date().toISOString(), trainSeconds: result.trainSeconds,
    machine: `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores`, threads: cfg.threads, license: sourceLicense(cfg.data),
    precision: cfg.precision ?? 'fp32',
  };
  // The run holds the whole adapted model ("backbone." names); the shipped file is the bare backbone.
  const { tensors } = decodeSafetensors(fs.readFileSync(path.join(result.dir, RUN_FILES.model)), result.dir);
  try {
    const bare = new Map<string, Tensor>();
    for (const [k, t] of tensors) if (k.startsWith('backbone.')) bare.set(k.slice('backbone.'.length), t);
    if (!bare.size) throw new Error(`${result.dir}: no backbone weights in the run`);
    fs.mkdirSync(path.dirname(path.resolve(weights)), { recursive: true });
    saveSafetensors(bare, weights, {
      [META.arch]: arch,
      [META.input]: JSON.stringify({ size: cfg.inputSize, channels: cfg.channels, normalize: cfg.input.resolvedStats }),
      [META.card]: JSON.stringify(card),
    });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  writeFileAtomic(weights.replace(/\.safetensors$/, '.md'), modelCardMarkdown(card, log.map((l) => l.valAcc)));
  return card;
}

export function modelCardMarkdown(c: ModelCard, valCurve: number[] = []): string {
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  return `# Model card: ${c.arch} pretrained on ${c.source}

- **Architecture**: \`${c.arch}\` (see docs/models.md), input ${c.input.size}×${c.input.size}, ${c.input.channels} channels,
  normalised with mean [${c.input.mean.map((x) => x.toFixed(4)).join(', ')}], std [${c.input.std.map((x) => x.toFixed(4)).join(', ')}]
  (statistics of the source training split).
- **Source task**: \`${c.source}\` — ${c.classes} classes (${c.classNames.slice(0, 8).join(', ')}${c.classes > 8 ? ', …' : ''}).
  Classes and scripts not listed here are never seen in pretraining and serve as transfer targets.
- **Training**: standard supervised training from random initialisation (\`finetune\` on random
  weights), ${c.epochs} epochs, seed ${c.seed}${c.precision && c.precision !== 'fp32' ? `, ${c.precision} autocast (fp32 weights and SGD state)` : ''}, ${(c.trainSeconds / 60).toFixed(1)} min of training steps${c.machine ? ` on ${c.machine} (${c.threads} thread${c.threads === 1 ? '' : 's'})` : ''}.
- **Accuracy on the source task**: validation ${pct(c.valAcc)}, test ${pct(c.testAcc)} (best-validation epoch).
${valCurve.length ? `- **Validation accuracy per epoch**: ${valCurve.map((v) => (100 * v).toFixed(1)).join(', ')}\n` : ''}- **Reproduce**: \`${c.command}\` (same machine and thread count → identical weights).
- **Made**: ${c.createdAt}.
- **Licence**: ${c.license ? `the weights derive from their sources (${c.license}) and are distributed under their terms` : 'the weights derive from Quick, Draw! (CC BY 4.0, Google) and are distributed under the same terms'}.
`;
}
