/**
 * One file holds everything a resumed run needs: model state, optimizer state, and where training
 * stood. Randomness needs no saving: the trainer reseeds from (seed, step) at every step, and data
 * order and augmentation derive from (seed, epoch, item), so position alone restores it exactly.
 */
import * as fs from 'node:fs';
import { Tensor } from '../engine/tensor';
import { Module } from '../nn/module';
import { Optimizer } from '../optim/optimizer';
import { decodeSafetensors, saveSafetensors } from '../io/safetensors';
import { InputError } from '../errors';
import type { LossScaleState } from './loss-scaler';

export interface Position {
  /** Epoch being trained (0-based) and batches of it already done. */
  epoch: number;
  step: number;
  globalStep: number;
  /** Running sums of the unfinished epoch, so its log line is the same after a resume. */
  lossSum: number;
  correct: number;
  seen: number;
  /** Training seconds so far (wall time of steps, not counting the pause). */
  trainSeconds: number;
  bestEpoch: number;
  bestAcc: number;
  bestLoss: number;
  /** fp16 runs: the loss scaler's state after the last step. */
  lossScale?: LossScaleState;
}

const META_KEY = 'adafilter.checkpoint';

export function saveCheckpoint(file: string, model: Module, opt: Optimizer, pos: Position): void {
  const tensors = new Map<string, Tensor>();
  for (const [k, t] of model.stateDict()) tensors.set(`model.${k}`, t);
  const sd = opt.stateDict();
  const numbers: Record<string, number>[] = [];
  sd.state.forEach((s, i) => {
    const nums: Record<string, number> = {};
    for (const [k, v] of Object.entries(s)) {
      if (typeof v === 'number') nums[k] = v;
      else tensors.set(`optim.${i}.${k}`, v);
    }
    numbers.push(nums);
  });
  saveSafetensors(tensors, file, { [META_KEY]: JSON.stringify({ position: pos, groups: sd.groups, numbers }) });
}

/**
 * Restores model and optimizer in place; returns the position. Every name and shape is checked
 * before anything changes (a checkpoint of another backbone or class count is refused whole).
 */
export function loadCheckpoint(file: string, model: Module, opt: Optimizer): Position {
  let bytes: Buffer;
  try { bytes = fs.readFileSync(file); } catch (e) {
    throw new InputError(`${file}: cannot read checkpoint (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  const { tensors, metadata } = decodeSafetensors(bytes, file);
  try {
    const raw = metadata?.[META_KEY];
    if (!raw) throw new InputError(`${file}: not an adafilter checkpoint`);
    let meta: { position: Position; groups: Record<string, unknown>[]; numbers: Record<string, number>[] };
    try { meta = JSON.parse(raw); } catch { throw new InputError(`${file}: checkpoint metadata is not JSON`); }
    const modelState = new Map<string, Tensor>();
    for (const [k, t] of tensors) if (k.startsWith('model.')) modelState.set(k.slice(6), t);
    try {
      model.loadStateDict(modelState);
    } catch (e) {
      throw new InputError(`${file}: checkpoint is for another model (${(e as Error).message})`);
    }
    const nParams = opt.groups.reduce((n, g) => n + g.params.length, 0);
    if (!Array.isArray(meta.numbers) || meta.numbers.length !== nParams || !Array.isArray(meta.groups) || meta.groups.length !== opt.groups.length) {
      throw new InputError(`${file}: optimizer state is for another model or method`);
    }
    const all = opt.groups.flatMap((g) => g.params);
    const state = meta.numbers.map((nums, i) => {
      const s: Record<string, Tensor | number> = { ...nums };
      for (const [k, t] of tensors) {
        const prefix = `optim.${i}.`;
        if (!k.startsWith(prefix)) continue;
        const shape = all[i].shape;
        if (t.shape.length !== shape.length || t.shape.some((d, j) => d !== shape[j])) {
          throw new InputError(`${file}: optimizer state '${k}' has shape [${t.shape}], parameter is [${shape}]`);
        }
        // On the parameter's device: checkpoints are written from host copies and load on either.
        s[k.slice(prefix.length)] = t.to(all[i].device, { copy: true });
      }
      return s;
    });
    opt.dispose();
    opt.loadStateDict({ groups: meta.groups, state });
    const p = meta.position;
    if (!p || !Number.isInteger(p.epoch) || !Number.isInteger(p.step) || !Number.isInteger(p.globalStep)) {
      throw new InputError(`${file}: checkpoint position is missing`);
    }
    return p;
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}
