export { workerEnv, WorkerEnv } from './env';
export { ProcessGroup, ProcessGroupOptions, DistError, distAvailable, DEFAULT_TIMEOUT_MS } from './process-group';
export { DistributedDataParallel, DdpOptions } from './ddp';
export { launch, runLaunch, parseLaunchArgs, LaunchOptions, LaunchError, WorkerFailure } from './launch';
export { ReduceOp } from './native';
export { DataParallel, shareOf } from './data-parallel';
