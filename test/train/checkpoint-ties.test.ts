/** Which validation point keeps its weights when validation accuracy ties (src/train/trainer.ts isBetter). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fineTune } from '../../src';
import { Interrupted } from '../../src/train/trainer';
import { EpochLog, readLog, readRunConfig, RUN_FILES } from '../../src/train/run-folder';
import { writeJsonAtomic } from '../../src/io/atomic';
import { SMALL_API, tmpDir } from './helpers';

// 3 classes × 6 shots, batch 8, 6 validation images: accuracy moves in sixths, so epochs tie.
const FAST = { ...SMALL_API, method: 'finetune', epochs: 12, valFraction: 0.02 };

/** The epoch a rule keeps, computed from the log alone. */
function kept(log: EpochLog[], ties: 'lower-loss' | 'earliest'): number {
  let best = log[0];
  for (const l of log.slice(1)) {
    if (l.valAcc > best.valAcc || (ties === 'lower-loss' && l.valAcc === best.valAcc && l.valLoss < best.valLoss)) best = l;
  }
  return best.epoch;
}

/**
 * Which seed's run ties at its best accuracy with the two rules keeping different epochs depends on
 * the CPU's arithmetic (one machine's seed 0 does, another's does not): the first of 8 seeds that
 * does, found once by full runs under the new rule, and used by both tests.
 */
let found: Promise<{ seed: number; dir: string; r: Awaited<ReturnType<typeof fineTune>> }> | undefined;
function tyingRun() {
  found ??= (async () => {
    const seen: string[] = [];
    for (let seed = 0; seed < 8; seed++) {
      const dir = path.join(tmpDir(`ties-${seed}`), 'run');
      const r = await fineTune({ ...FAST, seed, out: dir });
      const log = readLog(dir);
      if (kept(log, 'lower-loss') !== kept(log, 'earliest')) return { seed, dir, r };
      seen.push(`seed ${seed}: ${log.map((l) => l.valAcc.toFixed(3)).join(' ')}`);
    }
    throw new Error(`no seed of 8 tied at its best accuracy with the rules disagreeing, so these tests mean nothing: ${seen.join('; ')}`);
  })();
  return found;
}

test('tied validation accuracy: the point with the lower validation loss keeps its weights; run.json records the rule', async () => {
  const { dir, r } = await tyingRun();
  assert.equal(readRunConfig(dir).checkpointTies, 'lower-loss');
  const log = readLog(dir);
  const top = Math.max(...log.map((l) => l.valAcc));
  const atTop = log.filter((l) => l.valAcc === top);
  assert.ok(atTop.length >= 2, `the run must tie at its best accuracy for this test to mean anything (${log.map((l) => l.valAcc).join(', ')})`);
  assert.notEqual(kept(log, 'lower-loss'), kept(log, 'earliest'), 'the two rules must disagree on this run');
  assert.equal(r.bestEpoch, kept(log, 'lower-loss'));
  assert.equal(r.val.loss, Math.min(...atTop.map((l) => l.valLoss)));
});

test('a run folder from before the rule (no checkpointTies in run.json) resumes under the rule it started with', async () => {
  const { seed } = await tyingRun();
  const dir = path.join(tmpDir('ties-old'), 'run');
  const ac = new AbortController();
  await assert.rejects(fineTune({ ...FAST, seed, out: dir, signal: ac.signal,
    onEvent: (e) => { if (e.type === 'step' && e.epoch === 3 && e.step === 1) ac.abort(); } }), Interrupted);
  const cfgFile = path.join(dir, RUN_FILES.config);
  const { checkpointTies: _dropped, ...old } = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
  writeJsonAtomic(cfgFile, old);
  const r = await fineTune({ ...FAST, seed, out: dir, resume: true });
  const log = readLog(dir);
  assert.notEqual(kept(log, 'lower-loss'), kept(log, 'earliest'), 'the two rules must disagree on this run');
  assert.equal(r.bestEpoch, kept(log, 'earliest'));
  assert.equal(readRunConfig(dir).checkpointTies, undefined, 'resume does not rewrite run.json');
});
