/** Flags shared by `train` and `compare`, turned into TrainOptions. */
import type { ParseArgsConfig } from 'node:util';
import { InputError } from '../errors';
import { intFlag, numberFlag } from './command';
import type { TrainOptions } from '../train/options';
import { TRAIN_DEFAULTS } from '../train/options';
import { DEFAULT_EPOCHS, MIN_STEPS, VALIDATION_POINTS } from '../train/budget';
import { parseNormalize } from '../data/transforms';
import type { Precision } from '../engine/precision';
import { cpuBf16, cudaDevices } from '../engine/device';
import { distAvailable } from '../dist/process-group';
import { workerEnv } from '../dist/env';
import { RelaunchOptions } from '../dist/relaunch';
import type { DistOptions } from '../train/data-parallel';

export const TRAIN_FLAGS: NonNullable<ParseArgsConfig['options']> = {
  backbone: { type: 'string' }, data: { type: 'string' }, epochs: { type: 'string' }, batch: { type: 'string' },
  lr: { type: 'string' }, 'head-lr': { type: 'string' }, 'gate-lr': { type: 'string' }, wd: { type: 'string' },
  momentum: { type: 'string' }, schedule: { type: 'string' }, 'label-smoothing': { type: 'string' },
  'no-augment': { type: 'boolean' }, 'input-size': { type: 'string' }, shots: { type: 'string' }, classes: { type: 'string' }, threads: { type: 'string' },
  workers: { type: 'string' }, opt: { type: 'string', multiple: true }, out: { type: 'string' }, json: { type: 'boolean' },
  steps: { type: 'string' }, normalize: { type: 'string' }, 'features-from': { type: 'string' }, auto: { type: 'boolean' }, folds: { type: 'string' },
  'precise-bn': { type: 'string' }, 'freeze-through': { type: 'string' }, init: { type: 'string' }, precision: { type: 'string' }, device: { type: 'string' },
  // Data parallelism (distJobOf): torchrun's launcher flags and how a worker joins.
  'nproc-per-node': { type: 'string' }, nnodes: { type: 'string' }, 'node-rank': { type: 'string' }, 'master-addr': { type: 'string' },
  'master-port': { type: 'string' }, 'dist-timeout': { type: 'string' }, 'dist-backend': { type: 'string' }, 'dist-iface': { type: 'string' },
};

export const DIST_FLAGS_USAGE = `  --nproc-per-node N start N worker processes running this command (torchrun's contract; one thread each);
                     --batch stays the global batch, split over all ranks
  --nnodes M --node-rank R --master-addr H --master-port P   M machines: run the same command on each,
                     R = 0..M-1, H:P = node 0's address and a free port (default 127.0.0.1, 29500)
  --dist-timeout S   how long a rank waits for its peers, seconds (1800)
  --dist-backend gloo|nccl   collectives (gloo; nccl needs CUDA)    --dist-iface IF  network interface for Gloo`;

/**
 * The job the dist flags describe: a launcher to start (this process then only waits for its
 * workers), and how a worker joins. A process a launcher (ours or torchrun) started already has
 * its environment and just joins, whatever the launcher flags say.
 */
export function distJobOf(values: Values): { launcher: RelaunchOptions | null; dist: DistOptions } {
  const s = (k: string) => values[k] as string | undefined;
  const int = (k: string, min: number, max = Infinity) => {
    const n = intFlag(s(k), k, min, min);
    if (n > max) throw new InputError(`--${k}: expected an integer <= ${max}, got '${s(k)}'`);
    return s(k) === undefined ? undefined : n;
  };
  const backend = s('dist-backend') ?? 'gloo';
  if (backend !== 'gloo' && backend !== 'nccl') throw new InputError(`--dist-backend: expected gloo or nccl, got '${backend}'`);
  const timeout = s('dist-timeout') === undefined ? undefined : numberFlag(s('dist-timeout'), 'dist-timeout', 0);
  if (timeout !== undefined && !(timeout > 0)) throw new InputError(`--dist-timeout: expected seconds > 0, got '${s('dist-timeout')}'`);
  const iface = s('dist-iface');
  if (iface !== undefined && !/^[\w.:-]+$/.test(iface)) throw new InputError(`--dist-iface: expected a network interface name (e.g. eth0), got '${iface}'`);
  const dist: DistOptions = { ...(timeout !== undefined ? { timeoutMs: Math.round(timeout * 1000) } : {}), ...(iface !== undefined ? { iface } : {}) };
  const worker = workerEnv();
  const nproc = int('nproc-per-node', 1), nnodes = int('nnodes', 1), nodeRank = int('node-rank', 0), masterPort = int('master-port', 1, 65535);
  const masterAddr = s('master-addr');
  if (worker === null && nproc === undefined) {
    const stray = ['nnodes', 'node-rank', 'master-addr', 'master-port', 'dist-timeout', 'dist-backend', 'dist-iface'].find((k) => s(k) !== undefined);
    if (stray) throw new InputError(`--${stray}: only with --nproc-per-node N (or in a worker a launcher started)`);
  }
  if (nodeRank !== undefined && nodeRank >= (nnodes ?? 1)) throw new InputError(`--node-rank ${nodeRank}: must be below --nnodes ${nnodes ?? 1}`);
  if (masterAddr !== undefined && !masterAddr.trim()) throw new InputError('--master-addr: expected a host name or address');
  const parallel = worker ? worker.worldSize > 1 : (nproc ?? 1) * (nnodes ?? 1) > 1;
  const world = worker ? worker.worldSize : (nproc ?? 1) * (nnodes ?? 1);
  if (parallel && values.auto) throw new InputError('--auto: not with several processes yet (every rank would write the trials); search in one process, then train with the --lr it chose');
  const batch = s('batch') === undefined ? TRAIN_DEFAULTS.batch : Number(s('batch'));
  if (parallel && batch < world) throw new InputError(`--batch ${batch}: the global batch is split over ${world} processes, each needs at least one image; use a --batch of at least ${world}`);
  if (parallel && backend === 'nccl') {
    if (deviceOf(values) !== 'cuda') throw new InputError('--dist-backend nccl: NCCL runs one GPU per rank; add --device cuda (on a CUDA build), or use --dist-backend gloo');
    if (cudaDevices() === 0) throw new InputError('--dist-backend nccl: this build has no CUDA GPU to run NCCL on; use --dist-backend gloo');
    throw new InputError('--dist-backend nccl: this addon\'s dist module has Gloo only (NCCL is not built yet); use --dist-backend gloo');
  }
  if (parallel && !distAvailable()) throw new InputError('--nproc-per-node: this addon was built without Gloo (libgloo-dev; see README), so it cannot train on several processes');
  const launcher = worker === null && parallel
    ? { nprocPerNode: nproc ?? 1, ...(nnodes !== undefined ? { nnodes } : {}), ...(nodeRank !== undefined ? { nodeRank } : {}), ...(masterAddr !== undefined ? { masterAddr } : {}), ...(masterPort !== undefined ? { masterPort } : {}) }
    : null;
  return { launcher, dist };
}

function deviceOf(values: Values): 'cpu' | 'cuda' {
  const d = values.device as string | undefined;
  return d !== undefined && (d.startsWith('cuda') || d === 'auto') ? 'cuda' : 'cpu';
}

/** --precision and --device, also taken by eval and predict. */
export const COMPUTE_FLAGS: NonNullable<ParseArgsConfig['options']> = { precision: { type: 'string' }, device: { type: 'string' } };

export const COMPUTE_FLAGS_USAGE = `  --precision P      fp32 (default), bf16 (autocast; CUDA, or a CPU with AMX or AVX512-BF16:
                     elsewhere it is emulated and slower than fp32), fp16 (autocast + loss scaling; CUDA only)
  --device D         cpu (default), cuda, cuda:N, or auto (cuda when a GPU is usable)`;

/**
 * --precision and --device as given (checked where they are resolved: train/options.ts
 * resolveCompute), with a note on stderr when bf16 will run on a CPU that has no bf16 instructions.
 */
export function computeOptionsOf(values: Values): { precision?: Precision; device?: string } {
  const o = { precision: values.precision as Precision | undefined, device: values.device as string | undefined };
  const onCpu = o.device === undefined || o.device === 'cpu' || (o.device === 'auto' && cudaDevices() === 0);
  // Once per command: the workers of --nproc-per-node run this too, and rank 0 speaks for them.
  const firstRank = (process.env.RANK ?? '0') === '0';
  if (o.precision === 'bf16' && onCpu && firstRank && cpuBf16() === 'none') process.stderr.write(BF16_EMULATED_NOTE);
  return o;
}

const BF16_EMULATED_NOTE = 'note: this CPU has no bf16 instructions (neither AMX nor AVX512-BF16): bf16 is emulated and runs slower than fp32 here\n';

export const TRAIN_FLAGS_USAGE = `  --backbone B       default (the shipped backbone), an architecture (random init), or WEIGHTS.safetensors / ARCH:FILE
  --data D           dataset: mnist, fashion-mnist, quickdraw:300-309, glyphs:scripts=Armenian, folder:PATH …
  --epochs N         whole passes over the training set (default: a step budget, below)
  --batch N (${TRAIN_DEFAULTS.batch})      --lr X (${TRAIN_DEFAULTS.lr}, SGD momentum ${TRAIN_DEFAULTS.momentum})
  --head-lr X        new head's lr (default --lr)    --gate-lr X  gate/policy network lr (default: adafilter 1000×, spottune 10× --lr)
  --wd X             weight decay (${TRAIN_DEFAULTS.weightDecay})    --schedule cosine|constant    --label-smoothing X
  --no-augment       no random crops / flips          --shots K  training images per class
  --steps N          optimizer steps instead of --epochs (not both); neither: max(${MIN_STEPS} steps, ${DEFAULT_EPOCHS} epochs),
                     rounded up to whole epochs, validation about ${VALIDATION_POINTS} times (docs/training.md)
  --input-size N     input side in pixels (default: the backbone's)
  --normalize N      dataset|imagenet|none|MEAN,STD|M1,M2,M3,S1,S2,S3 instead of what the weights record
                     (default: torchvision/timm imports ImageNet's, nsfwjs x/255, the shipped backbone its source's)
  --features-from L  linear-probe: cut the backbone after block L (models inspect lists them)
  --freeze-through L finetune: freeze the stem and the blocks up to and including L (stem or a block;
                     BN there stays in eval mode)
  --init I           pretrained (default) | hybrid:L: pretrained up to and including L, re-initialised
                     after it as --backbone ARCH --seed N would start
  --auto             validation search: 6 trials, 3 lrs (lr / gate-lr pairs for gated methods) at the run's
                     budget and at twice it, the best by validation accuracy, then the final run; trials
                     in RUN/trials/, the choice in RUN/search.json
  --folds N|auto     --auto on N cross-validation folds of the training and validation images (1: the
                     validation split); auto (default): 3 folds when validation has < 2 images per class
  --classes A,B,..   keep these classes (names or indices)
  --opt KEY=VALUE    a method option (repeatable), e.g. --opt gateMode=st --opt warmup=0.3 --opt gatedBn=false
  --precise-bn auto|on|off  re-estimate BN statistics under the evaluation gates before each validation (auto: gated methods)
${COMPUTE_FLAGS_USAGE}
${DIST_FLAGS_USAGE}
  --threads N        libtorch threads    --workers N  data threads    --out DIR  run folder    --json  result on stdout`;

function parseValue(v: string): unknown {
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (v !== '' && Number.isFinite(Number(v))) return Number(v);
  return v;
}

export function methodOptionsOf(raw: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of (raw as string[] | undefined) ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new InputError(`--opt: expected KEY=VALUE, got '${kv}'`);
    out[kv.slice(0, eq)] = parseValue(kv.slice(eq + 1));
  }
  return out;
}

/** --features-from is linear-probe's featuresFrom option under a flag of its own. */
function featuresFromOf(layer: string | undefined, opts: Record<string, unknown>): Record<string, unknown> {
  if (layer === undefined) return opts;
  if (!layer.trim()) throw new InputError('--features-from: expected a block name (adafilter models inspect BACKBONE lists them)');
  if (opts.featuresFrom !== undefined && opts.featuresFrom !== layer) throw new InputError('--features-from and --opt featuresFrom disagree');
  return { ...opts, featuresFrom: layer };
}

/** --freeze-through is finetune's freezeThrough option under a flag of its own. */
function freezeThroughOf(layer: string | undefined, opts: Record<string, unknown>, method: string | undefined): Record<string, unknown> {
  if (layer === undefined) return opts;
  if (!layer.trim()) throw new InputError('--freeze-through: expected a layer name (stem or a block; adafilter models inspect BACKBONE lists them)');
  if (method !== undefined && method !== 'finetune') throw new InputError(`--freeze-through: only finetune freezes the layers up to a block (method ${method}); add --method finetune`);
  return { ...opts, freezeThrough: layer };
}

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** --folds for --auto: 'auto' (default), or a number (searchFolds checks it against the data). */
export function foldsOf(values: Values): number | 'auto' {
  const f = values.folds as string | undefined;
  if (f !== undefined && !values.auto) throw new InputError('--folds: only with --auto (it says how --auto validates its trials)');
  return f === undefined || f === 'auto' ? 'auto' : intFlag(f, 'folds', 1, 1);
}

export function trainOptionsOf(values: Values, where: string): TrainOptions {
  const s = (k: string) => values[k] as string | undefined;
  if (!s('data')) throw new InputError(`${where}: --data is required (e.g. --data quickdraw:300-309)`);
  const num = (k: string) => (s(k) === undefined ? undefined : numberFlag(s(k), k, 0));
  const int = (k: string, min = 1) => (s(k) === undefined ? undefined : intFlag(s(k), k, 0, min));
  const schedule = s('schedule');
  if (schedule !== undefined && schedule !== 'cosine' && schedule !== 'constant') throw new InputError(`--schedule: expected cosine or constant, got '${schedule}'`);
  return {
    backbone: s('backbone'), data: s('data')!, epochs: int('epochs'), batch: int('batch'), lr: num('lr'),
    headLr: num('head-lr'), gateLr: num('gate-lr'), weightDecay: num('wd'), momentum: num('momentum'),
    schedule: schedule as 'cosine' | 'constant' | undefined, labelSmoothing: num('label-smoothing'),
    augment: values['no-augment'] ? false : undefined, inputSize: int('input-size', 8), shots: int('shots'), threads: int('threads'), workers: int('workers', 0),
    classes: s('classes')?.split(',').map((c) => c.trim()).filter(Boolean).map((c) => (/^\d+$/.test(c) ? Number(c) : c)),
    methodOptions: freezeThroughOf(s('freeze-through'), featuresFromOf(s('features-from'), methodOptionsOf(values.opt)), where === 'train' ? s('method') ?? 'adafilter' : undefined),
    out: s('out'), init: s('init'),
    steps: int('steps'), normalize: s('normalize') === undefined ? undefined : parseNormalize(s('normalize')!), preciseBn: s('precise-bn') as TrainOptions['preciseBn'],
    ...computeOptionsOf(values),
  };
}
