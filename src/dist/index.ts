/**
 * Data-parallel training across processes and machines on libtorch's c10d (Gloo), as PyTorch's
 * torch.distributed does it: a launcher with torchrun's contract (launch.ts; torchrun itself works
 * too), the process group and its collectives (process-group.ts), DDP's C++ Reducer for the
 * gradient all-reduce (ddp.ts), and what a training loop needs on top (data-parallel.ts).
 */
export { workerEnv, WorkerEnv } from './env';
export { ProcessGroup, ProcessGroupOptions, DistError, distAvailable, DEFAULT_TIMEOUT_MS } from './process-group';
export { DistributedDataParallel, DdpOptions } from './ddp';
export { launch, runLaunch, parseLaunchArgs, LaunchOptions, LaunchError, WorkerFailure } from './launch';
export { ReduceOp, GradientBucket } from './native';
export { DataParallel, shareOf } from './data-parallel';
