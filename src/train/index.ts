/** Training runs: fine-tune, evaluate, predict, compare — the library's main API. */
export { fineTune, Interrupted, NonFiniteLoss } from './trainer';
export { resolveOptions as resolveTrainOptions, TRAIN_DEFAULTS } from './options';
export type { TrainOptions, TrainEvent } from './options';
export { evaluate } from './evaluate-run';
export type { EvaluateOptions } from './evaluate-run';
export { evaluateModel } from './evaluate';
export type { Evaluation } from './evaluate';
export { predict } from './predict';
export type { Prediction } from './predict';
export { compare, formatComparison, summarise, sampleStd } from './compare';
export type { CompareOptions, Comparison, CompareRow } from './compare';
export { loadRun, loadWeights } from './load-run';
export type { LoadedRun } from './load-run';
export { openBackbone, DEFAULT_WEIGHTS, META as WEIGHTS_METADATA } from './backbones';
export type { BackboneChoice, InputSpec } from './backbones';
export { RUN_FILES, readRunConfig, readLog, readResult, isRunFolder } from './run-folder';
export type { RunConfig, EpochLog, RunResult, SplitScore } from './run-folder';
