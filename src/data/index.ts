/** The data layer's public API: open a dataset by name, split and sample it, load batches. */
export type { Dataset, Item, Splits, SplitName, Storage, RawImage, Skipped } from './dataset';
export { splitCounts } from './dataset';
export { openDataset, openSource, SOURCES } from './registry';
export type { OpenOptions, SourceInfo } from './registry';
export { makeSplits, selectDatasetClasses, SPLIT_DEFAULTS, checkTrainingSplits, scoredOnValidation } from './split';
export type { SplitOptions } from './split';
export { classIndexOf, writeClassIndex, readClassIndex, applyClassIndex } from './class-index';
export type { ClassIndex } from './class-index';
export { resolveTransform, evalTransform, applyTransform, IMAGENET_STATS, parseNormalize } from './transforms';
export type { TransformSpec, ResolvedTransform, Stats, NormalizeChoice } from './transforms';
export { createLoader, datasetStats, Loader, onSplitOpen } from './loader';
export type { Batch, LoaderOptions, SplitOpen } from './loader';
export { writeContactSheet } from './sheet';
export { Rng } from './rng';
