/** A finished (or checkpointed) run folder back as a model, with the preprocessing it was trained with. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Module } from '../nn/module';
import { decodeSafetensors } from '../io/safetensors';
import { applyMethod } from '../methods/registry';
import { MethodModel } from '../methods/method';
import { ResolvedTransform, evalTransform, resolveTransform } from '../data/transforms';
import { InputError } from '../errors';
import { rebuildArchitecture } from './backbones';
import { RUN_FILES, RunConfig, readRunConfig } from './run-folder';

/** Loads a whole-model weights file (every name and shape must match: nothing silently left random). */
export function loadWeights(model: Module, file: string): void {
  let bytes: Buffer;
  try { bytes = fs.readFileSync(file); } catch (e) {
    throw new InputError(`${file}: cannot read weights (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  const { tensors } = decodeSafetensors(bytes, file);
  try {
    model.loadStateDict(tensors);
  } catch (e) {
    throw new InputError(`${file}: ${(e as Error).message}`);
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

export interface LoadedRun {
  dir: string;
  config: RunConfig;
  model: MethodModel;
  /** The evaluation preprocessing of the run (size, channels, normalisation). */
  transform: ResolvedTransform;
}

/** The run's best weights (model.safetensors) in a freshly built model of the same method; eval mode. */
export function loadRun(dir: string): LoadedRun {
  const config = readRunConfig(dir);
  const file = path.join(dir, RUN_FILES.model);
  if (!fs.existsSync(file)) throw new InputError(`${dir}: has no trained weights yet (${RUN_FILES.model}; the run has not finished an epoch)`);
  const model = applyMethod(config.method, rebuildArchitecture(config.arch, config.classes.length, config.archOptions), config.classes.length, config.methodOptions);
  try {
    loadWeights(model, file);
  } catch (e) {
    model.dispose();
    throw e;
  }
  model.eval();
  const transform = evalTransform(resolveTransform({ size: config.inputSize, channels: config.channels, normalize: config.input.resolvedStats }));
  return { dir, config, model, transform };
}
