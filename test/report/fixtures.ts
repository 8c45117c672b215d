/**
 * Run and compare folders as the trainer writes them (run.json, log.jsonl, result.json,
 * compare.json), with realistic numbers, in a temporary folder removed when the process exits.
 */
import { tmpDir as makeTmpDir } from '../helpers/tmp';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A fresh temporary folder, removed when the test process exits. */
export const tmpDir = (tag: string): string => makeTmpDir(`adafilter-report-${tag}`);

/** A class name that breaks HTML if unescaped. */
export const NASTY = '<b>&"';
export const CLASSES = ['cat', 'dog', 'fish', NASTY, 'house'];
export const LAYERS = [1, 2, 3].flatMap((s) => [0, 1, 2].flatMap((b) => [1, 2].map((c) => `layer${s}.${b}.conv${c}`)));

/** Deterministic noise so the fixtures look like training without depending on Math.random. */
function noise(seed: number): () => number {
  let s = seed * 9301 + 49297;
  return () => { s = (s * 9301 + 49297) % 233280; return s / 233280 - 0.5; };
}

export interface FixtureRun { method: string; seed: number; testAcc: number; valAcc: number; epochs: number }

export function writeRun(dir: string, r: FixtureRun, opts: { finished?: boolean; classes?: string[] } = {}): void {
  const classes = opts.classes ?? CLASSES;
  const gated = r.method.startsWith('adafilter');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify({
    version: 1, backbone: 'resnet20', data: 'quickdraw:cat,dog,fish', method: r.method,
    methodOptions: gated ? { gatedBn: true, budget: null } : {}, epochs: r.epochs, batch: 64, lr: 0.01, weightDecay: 5e-4,
    shots: null, seed: r.seed, classes, inputSize: [32, 32], channels: 3, createdAt: '2025-01-02T03:04:05.000Z',
  }, null, 2));
  const rnd = noise(r.seed + r.method.length);
  const lines: string[] = [];
  for (let e = 1; e <= r.epochs; e++) {
    const t = e / r.epochs;
    lines.push(JSON.stringify({
      epoch: e, steps: 40 * e, lr: 0.01 * 0.5 * (1 + Math.cos(Math.PI * t)),
      trainLoss: 1.6 * Math.exp(-2.5 * t) + 0.15 + 0.03 * rnd(),
      trainAcc: Math.min(1, 0.35 + 0.6 * (1 - Math.exp(-3 * t)) + 0.01 * rnd()),
      valLoss: 1.4 * Math.exp(-2 * t) + 0.35 + 0.03 * rnd(),
      valAcc: Math.min(1, 0.3 + (r.valAcc - 0.3) * (1 - Math.exp(-4 * t)) / (1 - Math.exp(-4)) + 0.01 * rnd()),
      imagesPerSec: 850 + 20 * rnd(), seconds: 3.1 + 0.2 * rnd(), time: `2025-01-02T03:${String(4 + e).padStart(2, '0')}:00.000Z`,
      // Gated runs log whether the gate learns, per layer and overall (the trainer's GateLearning).
      ...(gated ? {
        gates: {
          fraction: 0.5 - 0.1 * t, meanAbsLogit: 0.1 + 0.5 * t, filtersVarying: 0.3 * t, drift: 0.05 * t,
          layers: LAYERS.map((name, l) => ({ name, fraction: 0.5 - 0.01 * l * t, meanAbsLogit: 0.1 + 0.5 * t, filtersVarying: 0.3 * t, drift: 0.05 * t * (1 + l / 10) })),
        },
      } : {}),
    }));
  }
  fs.writeFileSync(path.join(dir, 'log.jsonl'), lines.join('\n') + '\n');
  if (opts.finished === false) return;
  const perClassAcc = Object.fromEntries(classes.map((c, i) => [c, Math.min(1, Math.max(0, r.testAcc + 0.08 * Math.sin(i + r.seed)))]));
  const gates = gated ? {
    examples: 500,
    fraction: 0.42,
    layers: LAYERS.map((name, l) => ({
      name, filters: l < 6 ? 16 : l < 12 ? 32 : 64,
      fraction: 0.2 + 0.5 * (l / LAYERS.length) + 0.02 * rnd(),
      exampleStd: 0.05, exampleMin: 0.1, exampleMax: 0.9, filtersVarying: 0.6,
      // Keyed by class name, as the trainer writes them (GateStatsCollector's indices mapped).
      perClass: Object.fromEntries(classes.map((name, c) => [name, Math.min(1, Math.max(0, 0.15 + 0.5 * (l / LAYERS.length) + 0.25 * Math.sin(c * 1.3 + l * 0.4)))])),
    })),
  } : null;
  fs.writeFileSync(path.join(dir, 'result.json'), JSON.stringify({
    method: r.method, backbone: 'resnet20', data: 'quickdraw:cat,dog,fish', seed: r.seed, epochs: r.epochs, bestEpoch: r.epochs - 1,
    val: { acc: r.valAcc, loss: 0.41 }, test: { acc: r.testAcc, loss: 0.44, perClass: perClassAcc }, gates,
    params: { total: gated ? 560000 : 272474, trainable: gated ? 300000 : 272474, frozen: gated ? 260000 : 0 }, trainSeconds: 3.2 * r.epochs,
  }, null, 2));
}

export const RUNS: FixtureRun[] = [
  { method: 'finetune', seed: 0, testAcc: 0.812, valAcc: 0.805, epochs: 12 },
  { method: 'finetune', seed: 1, testAcc: 0.797, valAcc: 0.8, epochs: 12 },
  { method: 'adafilter', seed: 0, testAcc: 0.846, valAcc: 0.84, epochs: 12 },
  { method: 'adafilter', seed: 1, testAcc: 0.861, valAcc: 0.852, epochs: 12 },
];

/** A compare folder holding the four runs of RUNS; returns its path. */
export function writeCompare(root: string): string {
  const cmp = path.join(root, 'cmp');
  const runs = RUNS.map((r) => {
    const dir = `${r.method}-s${r.seed}`;
    writeRun(path.join(cmp, dir), r);
    return { method: r.method, seed: r.seed, dir, valAcc: r.valAcc, testAcc: r.testAcc };
  });
  fs.writeFileSync(path.join(cmp, 'compare.json'), JSON.stringify({
    version: 1, backbone: 'resnet20', data: 'quickdraw:cat,dog,fish', methods: ['finetune', 'adafilter'], seeds: [0, 1], runs,
    summary: [], // the report recomputes it from the runs
  }, null, 2));
  return cmp;
}
