/**
 * fineTune: one run, from a dataset name and a backbone to a finished run folder. Data flows one
 * way — dataset → loader → model → loss → SGD — and everything the run decides is written to the
 * run folder (see run-folder.ts), atomically, so a kill at any moment leaves a resumable run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { manualSeed } from '../engine/random';
import { setNumThreads } from '../engine/runtime';
import { tidy } from '../engine/scope';
import { inPrecision } from '../engine/precision';
import { SGD } from '../optim/sgd';
import { constant, cosine } from '../optim/schedule';
import { applyMethod } from '../methods/registry';
import { MethodModel } from '../methods/method';
import { openDataset } from '../data/registry';
import { Dataset } from '../data/dataset';
import { createLoader, datasetStats, Loader } from '../data/loader';
import { TransformSpec, resolveTransform, evalTransform, ResolvedTransform } from '../data/transforms';
import { saveSafetensors } from '../io/safetensors';
import { appendLine, writeJsonAtomic } from '../io/atomic';
import { InputError } from '../errors';
import { openBackbone, BackboneChoice, inputTransform } from './backbones';
import { applyInit } from './hybrid-init';
import { checkTrainingSplits, crossValidationFold, scoredOnValidation } from '../data/split';
import { normalizeStats } from '../data/transforms';
import { loadCheckpoint, Position, saveCheckpoint } from './checkpoint';
import { LossScaler } from './loss-scaler';
import { evaluateModel } from './evaluate';
import { inputsOf, targetsOf } from './batch';
import { resolveOptions, ResolvedOptions, TrainOptions } from './options';
import { CheckpointTies, EpochLog, RUN_FILES, RunConfig, RunResult, readLog, readRunConfig, readResult } from './run-folder';
import { loadWeights } from './load-run';
import { FeatureCache } from './feature-cache';
import { recalibrateBn, usesPreciseBn } from './precise-bn';
import { Budget, trainingBudget } from './budget';
import { getMethod } from '../methods/registry';
import type { GateStats } from '../methods/gate-stats';
import type { GateLearning } from './run-folder';
import { RunRanks } from './data-parallel';

/** A run stopped by its signal (SIGINT): the checkpoint is saved, --resume continues it. */
export class Interrupted extends Error {
  override name = 'Interrupted';
  constructor(readonly dir: string, readonly checkpoint: string) {
    super(`interrupted; checkpoint saved, continue with --resume (${dir})`);
  }
}

/** The loss became NaN or infinite: the run stops, the last good checkpoint stays. */
export class NonFiniteLoss extends InputError {
  override name = 'NonFiniteLoss';
}

/** A seed per training step: randomness (Gumbel noise, dropout) then depends on position only. */
function stepSeed(seed: number, globalStep: number): number {
  return (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(globalStep + 1, 0x85ebca77)) >>> 0;
}

function trainTransform(input: ResolvedTransform, augment: boolean): ResolvedTransform {
  if (!augment) return input;
  // CIFAR-style shifts (pad 1/8 of the side, random crop) and flips: the same for every method.
  return { ...input, crop: 'random', pad: Math.max(1, Math.round(input.height / 8)), flip: true };
}

/** Keys of run.json that must match when resuming (the rest — threads excepted — follow from them). */
const IDENTITY: (keyof RunConfig)[] = ['backbone', 'arch', 'data', 'method', 'inputSize', 'epochs', 'steps', 'batch', 'lr', 'headLr', 'gateLr',
  'weightDecay', 'momentum', 'schedule', 'labelSmoothing', 'augment', 'preciseBn', 'init', 'shots', 'seed', 'valFraction', 'testFraction', 'precision', 'cvFold'];

/** The epoch's gate statistics on the validation split, with the fine-tuned filters' drift. */
function gateLearning(g: GateStats, drift: { overall: number; layers: Record<string, number> } | null): GateLearning {
  let filters = 0, logit = 0, varying = 0, withLogits = true;
  for (const l of g.layers) {
    filters += l.filters;
    varying += l.filtersVarying * l.filters;
    if (l.meanAbsLogit === null || l.meanAbsLogit === undefined) withLogits = false;
    else logit += l.meanAbsLogit * l.filters;
  }
  return {
    fraction: g.fraction, meanAbsLogit: withLogits ? logit / filters : null, filtersVarying: varying / filters, drift: drift?.overall ?? null,
    layers: g.layers.map((l) => ({
      name: l.name, fraction: l.fraction, meanAbsLogit: l.meanAbsLogit ?? null, filtersVarying: l.filtersVarying, drift: drift?.layers[l.name] ?? null,
    })),
  };
}

/**
 * Whether a validation point beats the best so far. On a small validation split accuracy ties
 * often: Quick Draw 335-339 with 10 images per class validates on 5 images, every point of the run
 * scores 100% from epoch 12 of 250 on, and keeping the first of them kept AdaFilter's weights of 24
 * steps in (test 70%) from a 500-step run. Lower validation loss breaks the tie.
 */
export function isBetter(v: { acc: number; loss: number }, best: { bestAcc: number; bestLoss: number }, ties: CheckpointTies): boolean {
  return v.acc > best.bestAcc || (ties === 'lower-loss' && v.acc === best.bestAcc && v.loss < best.bestLoss);
}

function checkResumable(dir: string, saved: RunConfig, now: RunConfig): void {
  // A key a run folder lacks was added after that run was made: nothing to compare it with.
  const diffs = IDENTITY.filter((k) => k in saved && JSON.stringify(saved[k]) !== JSON.stringify(now[k]))
    .map((k) => `${k} ${JSON.stringify(saved[k])} → ${JSON.stringify(now[k])}`);
  if (JSON.stringify(saved.classes) !== JSON.stringify(now.classes)) diffs.push(`classes differ (${saved.classes.length} → ${now.classes.length})`);
  if (JSON.stringify(saved.methodOptions) !== JSON.stringify(now.methodOptions)) diffs.push('method options differ');
  if (diffs.length) throw new InputError(`${dir}: cannot resume, the run was started with other settings: ${diffs.join('; ')}`);
}

interface Prepared {
  o: ResolvedOptions;
  budget: Budget;
  ds: Dataset;
  bb: BackboneChoice;
  config: RunConfig;
  transform: ResolvedTransform;
}

/** The run's dataset with its splits (classes, val/test carved, shots sampled by seed), before any cross-validation fold. */
export function openRunSplits(o: ResolvedOptions): Promise<Dataset> {
  return openDataset(o.data, { seed: o.seed, shots: o.shots ?? undefined, classes: o.classes ?? undefined, val: o.valFraction, test: o.testFraction });
}

async function prepare(opts: TrainOptions): Promise<Prepared> {
  const o = resolveOptions(opts);
  const split = await openRunSplits(o);
  const opened = o.cvFold ? crossValidationFold(split, o.cvFold.fold, o.cvFold.folds, o.seed) : split;
  checkTrainingSplits(opened, o.cvFold ? `${o.data} (cross-validation fold ${o.cvFold.fold + 1} of ${o.cvFold.folds})` : o.data);
  // A validation-search trial is scored on val at the end: its test split is never opened.
  const ds = o.evaluateOn === 'val' ? scoredOnValidation(opened) : opened;
  setNumThreads(o.threads);
  // The head's initialisation is the only randomness before the first step.
  manualSeed(o.seed);
  const bb = openBackbone(o.backbone, ds.classes.length);
  applyInit(bb, o.init, o.seed, ds.classes.length); // --init hybrid:LAYER
  if (o.inputSize !== null) bb.input.size = o.inputSize; // every backbone pools globally: any size runs
  if (o.normalize !== null) bb.input.normalize = normalizeStats(o.normalize); // --normalize overrides what the weights record
  const transform = await inputTransform(bb.input, ds);
  const budget = trainingBudget({ trainSize: ds.splits.train.length, batch: o.batch, steps: o.steps, epochs: o.epochs });
  const config: RunConfig = {
    version: 1, backbone: o.backbone, arch: bb.arch, ...(bb.archOptions ? { archOptions: bb.archOptions } : {}), data: o.data, method: o.method, methodOptions: o.methodOptions,
    epochs: budget.epochs, steps: budget.steps, validateEvery: budget.validateEvery, budgetRule: budget.rule,
    batch: o.batch, lr: o.lr, headLr: o.headLr, gateLr: o.gateLr, weightDecay: o.weightDecay,
    momentum: o.momentum, schedule: o.schedule, labelSmoothing: o.labelSmoothing, augment: o.augment, preciseBn: o.preciseBn, init: o.init, shots: o.shots,
    valFraction: o.valFraction, testFraction: o.testFraction, seed: o.seed, threads: o.threads, precision: o.precision, device: o.device,
    checkpointTies: 'lower-loss', ...(o.cvFold ? { cvFold: o.cvFold } : {}), classes: ds.classes,
    input: { ...bb.input, resolvedStats: { mean: transform.mean, std: transform.std } },
    inputSize: bb.input.size, channels: bb.input.channels, createdAt: new Date().toISOString(),
  };
  return { o, budget, ds, bb, config, transform };
}

/**
 * Trains one method on one dataset and writes the run folder. With `resume`, continues the run in
 * `out` from its checkpoint, ending with the same weights and numbers as an uninterrupted run.
 */
export async function fineTune(opts: TrainOptions): Promise<RunResult> {
  const { o, budget, ds, bb, config, transform } = await prepare(opts);
  // One rank of a data-parallel job (train/data-parallel.ts) when a launcher started this process; rank 0 alone writes and reports.
  const ranks = await RunRanks.join(opts.dist);
  ranks?.checkSplit(ds.splits.train.length, o.batch);
  const writes = !ranks || ranks.writes;
  if (!writes) opts = { ...opts, onEvent: undefined };
  const dir = path.resolve(o.out);
  const files = Object.fromEntries(Object.entries(RUN_FILES).map(([k, v]) => [k, path.join(dir, v)])) as Record<keyof typeof RUN_FILES, string>;
  // resume on a folder without a run starts one: "continue if there is something to continue".
  const resume = o.resume && fs.existsSync(files.config);
  if (resume) {
    const saved = readRunConfig(dir);
    checkResumable(dir, saved, config);
    config.createdAt = saved.createdAt;
    // A run continues under the rule it was started with.
    config.checkpointTies = saved.checkpointTies ?? 'earliest';
    const done = readResult(dir);
    if (done) { bb.model.dispose(); return done; }
  } else if (fs.existsSync(files.config)) {
    throw new InputError(`${dir}: already holds a run (use --resume to continue it, or another --out)`);
  }

  const model: MethodModel = applyMethod(o.method, bb.model, ds.classes.length, o.methodOptions);
  model.to(o.device); // before the optimizer: its state is made beside the parameters
  const opt = new SGD(model.paramGroups({ lr: o.lr, headLr: o.headLr, gateLr: o.gateLr, weightDecay: o.weightDecay }),
    { lr: o.lr, momentum: o.momentum });
  const baseLrs = opt.groups.map((g) => g.lr);
  const loaders: Loader[] = [];
  try {
    const train = await createLoader(ds, { split: 'train', batch: o.batch, transform: trainTransform(transform, o.augment), seed: o.seed, workers: o.workers });
    loaders.push(train);
    const val = await createLoader(ds, { split: 'val', batch: 100, transform: evalTransform(transform), workers: o.workers });
    loaders.push(val);
    const gated = getMethod(o.method).gated ?? false;
    // The training images as evaluation sees them, at the training batch size (BN's batch statistics
    // depend on it): the recalibration pass.
    let recal: Loader | null = null;
    if (usesPreciseBn(o.preciseBn, gated)) {
      recal = await createLoader(ds, { split: 'train', batch: o.batch, transform: evalTransform(transform), workers: o.workers });
      loaders.push(recal);
    }
    const cache = await FeatureCache.build(model, train, o); // the linear probe's cached features, else null
    const totalSteps = budget.steps;
    // A function of the global step alone (not an LRScheduler's count), so a resumed run continues on the same curve.
    const schedule = o.schedule === 'cosine' ? cosine(totalSteps) : constant();

    await ranks?.barrier(); // every rank has looked at the folder before rank 0 writes to it
    if (writes) try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new InputError(`${dir}: cannot create the run folder (${(e as NodeJS.ErrnoException).code ?? e})`);
    }
    if (!resume && writes) writeJsonAtomic(files.config, config);

    let pos: Position = { epoch: 0, step: 0, globalStep: 0, lossSum: 0, correct: 0, seen: 0, trainSeconds: 0, bestEpoch: 0, bestAcc: -1, bestLoss: Infinity };
    if (resume && fs.existsSync(files.checkpoint)) pos = loadCheckpoint(files.checkpoint, model, opt);
    else if (model.calibrate) { // gna: once per run, before its first step; the checkpoint keeps the result
      const calibration = await createLoader(ds, { split: 'train', batch: o.batch, transform: evalTransform(transform), workers: o.workers });
      loaders.push(calibration);
      await model.calibrate(calibration.epoch(0));
    }
    if (ranks && !(await ranks.same([pos.globalStep]))) throw new InputError(`${dir}: the ranks found different checkpoints; on several machines --out must be a folder they all share`);
    await ranks?.wrap(model, gated);
    const scaler = o.precision === 'fp16' ? new LossScaler({}, pos.lossScale) : null;
    const log = readLog(dir);
    // Epoch lines written after the checkpoint (a kill between the two writes) are dropped, then rewritten identically.
    const kept = log.filter((l) => l.epoch <= pos.epoch);
    if (resume && writes && kept.length < log.length) {
      fs.writeFileSync(files.log, kept.map((l) => JSON.stringify(l) + '\n').join(''));
    }
    opts.onEvent?.({ type: 'start', dir, epochs: budget.epochs, stepsPerEpoch: train.numBatches, startEpoch: pos.epoch, startStep: pos.step, description: bb.description });

    let stopRequested = false;
    const stopping = () => (ranks ? stopRequested : Boolean(opts.signal?.aborted));
    for (; pos.epoch < budget.epochs; pos.epoch++) {
      model.train();
      const epochStart = process.hrtime.bigint();
      const last = pos.epoch + 1 === budget.epochs;
      // --steps can end the run inside its last epoch.
      const epochSteps = last ? budget.lastEpochSteps : budget.stepsPerEpoch;
      let epochImages = 0;
      let k = 0;
      for await (const b of train.epoch(pos.epoch)) {
        if (k >= epochSteps) break;
        if (k++ < pos.step) continue; // resumed mid-epoch (after SIGINT): these batches are done
        const t0 = process.hrtime.bigint();
        manualSeed(stepSeed(o.seed, pos.globalStep));
        model.atStep(pos.globalStep, totalSteps);
        opt.groups.forEach((g, i) => (g.lr = schedule(baseLrs[i], pos.globalStep)));
        const mine = ranks ? ranks.local(b) : b; // this rank's share of the global batch
        let [loss, correct] = tidy(() => {
          opt.zeroGrad();
          const y = targetsOf(mine, o.device);
          // Autocast covers forward and loss only (backward follows the forward's dtypes; the step is fp32).
          const { logits, l } = inPrecision(o.precision, o.device, () => {
            const run = () => {
              const pass = cache ? { logits: cache.logits(mine), gates: [] } : model.run(inputsOf(mine, o.device));
              return { logits: pass.logits, l: model.loss(pass, y, { labelSmoothing: o.labelSmoothing }) };
            };
            return ranks ? ranks.forward(b.y.length, run, (r) => [r.l]) : run();
          });
          const lv = l.item();
          // Under DDP every rank runs backward (a rank that skipped it would leave the others' gradient
          // all-reduce waiting); whether to step is decided together below.
          if (!ranks && !Number.isFinite(lv)) return [lv, 0] as const;
          const scaled = ranks ? l.mul(ranks.lossScale(b.y.length)) : l;
          if (scaler) { // fp16: scaled loss, unscaled gradients, overflowing steps skipped
            scaler.scaled(scaled).backward();
            if (!ranks) scaler.step(opt);
          } else {
            scaled.backward();
            if (!ranks) opt.step();
          }
          return [lv, logits.argmax(1).eq(y).sum().item()] as const;
        });
        let stop = Boolean(opts.signal?.aborted);
        if (ranks) {
          const agreed = await ranks.agree({ loss, images: mine.y.length, correct, stop });
          ({ loss, correct, stop } = agreed);
          if (Number.isFinite(loss)) tidy(() => (scaler ? scaler.step(opt) : opt.step()));
        }
        if (!Number.isFinite(loss)) {
          throw new NonFiniteLoss(`the loss became ${loss} at epoch ${pos.epoch + 1}, step ${pos.step + 1}; stopped — the last good checkpoint is kept in ${dir} (try a lower --lr)`);
        }
        const dt = Number(process.hrtime.bigint() - t0) / 1e9;
        pos.trainSeconds += dt;
        pos.lossSum += loss * b.y.length; pos.correct += correct; pos.seen += b.y.length;
        pos.step++; pos.globalStep++;
        if (scaler) pos.lossScale = scaler.state;
        epochImages += b.y.length;
        const secs = Number(process.hrtime.bigint() - epochStart) / 1e9;
        opts.onEvent?.({ type: 'step', epoch: pos.epoch, step: pos.step, stepsPerEpoch: train.numBatches, loss, acc: correct / b.y.length, imagesPerSec: epochImages / secs, lr: opt.groups[0].lr });
        // Let the event loop turn: with in-thread data loading nothing else would, and signals (SIGINT) wait for it.
        await new Promise((r) => setImmediate(r));
        if (!ranks) stop = Boolean(opts.signal?.aborted);
        stopRequested = stop; // ranks: what every rank agreed on at this step
        if (stop && pos.step < epochSteps) {
          await ranks?.syncBuffers();
          if (writes) saveCheckpoint(files.checkpoint, model, opt, pos);
          await ranks?.barrier();
          opts.onEvent?.({ type: 'interrupted', epoch: pos.epoch, step: pos.step, checkpoint: files.checkpoint });
          throw new Interrupted(dir, files.checkpoint);
        }
      }
      const seconds = Number(process.hrtime.bigint() - epochStart) / 1e9;
      const next: Position = { ...pos, epoch: pos.epoch + 1, step: 0, lossSum: 0, correct: 0, seen: 0 };
      // Small sets run many short epochs: validation (and with it the checkpoint and the log line) every
      // validateEvery epochs and after the last. A kill in between resumes from the last validation.
      if (last || (pos.epoch + 1) % budget.validateEvery === 0) {
        // The saved best weights carry the statistics recalibrated here, so the test (and `eval`) use them too.
        await ranks?.syncBuffers();
        if (recal) await recalibrateBn(model, recal.epoch(0));
        const evaluation = { gates: gated, precision: o.precision, device: o.device };
        const v = ranks ? await ranks.evaluate(model, val, gated, evaluation) : await evaluateModel(model, val, evaluation);
        const best = isBetter(v, pos, config.checkpointTies!);
        const entry: EpochLog = {
          epoch: pos.epoch + 1, steps: epochSteps, lr: opt.groups[0].lr, trainLoss: pos.lossSum / pos.seen, trainAcc: pos.correct / pos.seen,
          valLoss: v.loss, valAcc: v.acc, imagesPerSec: epochImages / seconds, seconds, time: new Date().toISOString(),
          ...(v.gates ? { gates: gateLearning(v.gates, model.weightDrift()) } : {}),
        };
        // Order matters for kill safety: best weights, then the checkpoint that says they are best, then the log.
        if (best) {
          if (writes) saveSafetensors(model, files.model, { 'adafilter.arch': config.arch });
          next.bestAcc = v.acc; next.bestLoss = v.loss; next.bestEpoch = pos.epoch + 1;
        }
        if (writes) {
          saveCheckpoint(files.checkpoint, model, opt, next);
          appendLine(files.log, JSON.stringify(entry));
        }
        opts.onEvent?.({ type: 'epoch', epoch: pos.epoch + 1, epochs: budget.epochs, trainLoss: entry.trainLoss, trainAcc: entry.trainAcc, valLoss: v.loss, valAcc: v.acc, best, seconds, imagesPerSec: entry.imagesPerSec });
      } else if (stopping()) {
        await ranks?.syncBuffers();
        if (writes) saveCheckpoint(files.checkpoint, model, opt, next);
      }
      pos = { ...next, epoch: pos.epoch };
      if (stopping() && !last) {
        await ranks?.barrier();
        opts.onEvent?.({ type: 'interrupted', epoch: pos.epoch + 1, step: 0, checkpoint: files.checkpoint });
        throw new Interrupted(dir, files.checkpoint);
      }
    }

    // Model selection is done: the test split is read once, with the best validation weights.
    await ranks?.verifyReplicas(model); // DDP's promise: every rank trained the same model
    if (writes) loadWeights(model, files.model);
    await ranks?.shareModel(model);
    const test = await createLoader(ds, { split: 'test', batch: 100, transform: evalTransform(transform), workers: o.workers });
    loaders.push(test);
    const testing = { gates: true, precision: o.precision, device: o.device };
    const t = ranks ? await ranks.evaluate(model, test, gated, testing) : await evaluateModel(model, test, testing);
    opts.onEvent?.({ type: 'test', acc: t.acc, loss: t.loss });
    const result: RunResult = {
      method: o.method, backbone: o.backbone, arch: config.arch, data: o.data, seed: o.seed, epochs: budget.epochs,
      bestEpoch: pos.bestEpoch, val: { acc: pos.bestAcc, loss: pos.bestLoss },
      test: { acc: t.acc, loss: t.loss, examples: t.examples, perClass: t.perClass }, gates: t.gates,
      params: model.parameterCounts(), trainSeconds: pos.trainSeconds, dir,
    };
    if (writes) writeJsonAtomic(files.result, result);
    await ranks?.barrier(); // the run folder is complete before any rank reports the run finished
    return result;
  } finally {
    ranks?.end();
    await Promise.all(loaders.map((l) => l.close()));
    opt.dispose();
    model.dispose();
  }
}
