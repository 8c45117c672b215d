import { manualSeed, randn, randint } from '../src/engine/random';
import { setNumThreads } from '../src/engine/runtime';
import { tidy } from '../src/engine/scope';
import { noGrad } from '../src/engine/autograd';
import { Tensor } from '../src/engine/tensor';
import { checkPrecision, inPrecision, Precision } from '../src/engine/precision';
import { deviceType, onDevice, resolveDevice } from '../src/engine/device';
import { InputError } from '../src/errors';
import { crossEntropy } from '../src/nn/functional';
import { buildModel, modelSpec } from '../src/models/registry';
import { SGD } from '../src/optim/sgd';
import { forwardFlops } from './flops';
import { machineInfo, median, peakRssMb } from './machine';
import { Peer } from './peer';

export interface ThroughputOptions {
  arch: string;
  batch: number;
  threads: number;
  steps: number;
  warmup: number;
  rounds: number;
  channelsLast: boolean;
  peer: boolean;
  /** Input side in pixels; the architecture's own by default. */
  inputSize?: number;
  /** fp32 (default) or bf16 autocast, here and in PyTorch (torch.autocast('cpu', dtype=torch.bfloat16)). */
  precision?: Precision;
  /** cpu (default), cuda, cuda:N or auto; PyTorch runs on the same device. */
  device?: string;
}

interface Side {
  forward_img_s: number;
  train_img_s: number;
  forward_ms: number;
  train_ms: number;
  forward_gflop_s: number;
  train_gflop_s: number;
  peak_rss_mb: number;
  /** Every timed step, in order, so the spread (and any noise) is visible. */
  forward_steps_ms: number[];
  train_steps_ms: number[];
}

function side(batch: number, fwd: number[], train: number[], flops: number, rss: number): Side {
  const f = median(fwd), t = median(train);
  return {
    forward_img_s: batch / f, train_img_s: batch / t, forward_ms: f * 1e3, train_ms: t * 1e3,
    // A training step costs about 3× the forward FLOPs (forward, input gradient, weight gradient).
    forward_gflop_s: flops / f / 1e9, train_gflop_s: 3 * flops / t / 1e9, peak_rss_mb: rss,
    forward_steps_ms: fwd.map((s) => +(s * 1e3).toFixed(2)), train_steps_ms: train.map((s) => +(s * 1e3).toFixed(2)),
  };
}

export const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

/** Times forward passes and SGD training steps of one architecture here and in PyTorch, alternately. */
export async function runThroughput(o: ThroughputOptions) {
  const device = resolveDevice(o.device ?? 'cpu');
  const precision = checkPrecision(o.precision ?? 'fp32', device);
  if (precision === 'fp16') throw new InputError('bench throughput: precision fp16 is not benchmarked (the PyTorch peer times fp32 and bf16)');
  // GPU kernels run asynchronously: a step is timed until its results are there (PyTorch's side
  // synchronises likewise).
  const cuda = deviceType(device) === 'cuda';
  const spec = modelSpec(o.arch);
  setNumThreads(o.threads);
  manualSeed(0);
  const model = buildModel(o.arch, 10).to(device);
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  const size = o.inputSize ?? spec.inputSize;
  let x: Tensor = onDevice(randn([o.batch, 3, size, size]), device);
  const y = onDevice(randint(0, 10, [o.batch]), device);
  if (o.channelsLast) {
    x = x.contiguous('channels_last');
    model.to('channels_last');
  }

  const time = (mode: 'forward' | 'train', steps: number): number[] => {
    const times: number[] = [];
    if (mode === 'forward') model.eval(); else model.train();
    for (let i = 0; i < steps; i++) {
      const t0 = process.hrtime.bigint();
      if (mode === 'forward') {
        noGrad(() => tidy(() => { inPrecision(precision, device, () => model.forward(x)).sum().item(); }));
      } else {
        // As the trainer does: autocast around forward and loss, backward and the fp32 step outside it.
        tidy(() => {
          opt.zeroGrad();
          const loss = inPrecision(precision, device, () => crossEntropy(model.forward(x), y));
          loss.backward();
          opt.step();
          if (cuda) loss.item(); // waits for the stream, the step's kernels included
        });
      }
      times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    return times;
  };

  const peer = o.peer ? new Peer('throughput.py') : null;
  let peerSetup: any = null;
  const ours = { forward: [] as number[], train: [] as number[] };
  const theirs = { forward: [] as number[], train: [] as number[] };
  try {
    if (peer) {
      peerSetup = await peer.request({ cmd: 'setup', arch: o.arch, batch: o.batch, threads: o.threads, input_size: size, channels_last: o.channelsLast, method: 'finetune', precision, device });
    }
    for (const mode of ['forward', 'train'] as const) {
      time(mode, o.warmup);
      if (peer) await peer.request({ cmd: 'time', mode, steps: 0, warmup: o.warmup });
      for (let r = 0; r < o.rounds; r++) {
        ours[mode].push(...time(mode, o.steps));
        if (!peer) continue;
        // OpenMP workers spin for a while after their last parallel region; let the other side's
        // go idle before timing this one, or they steal one of the two cores.
        await settle();
        theirs[mode].push(...(await peer.request({ cmd: 'time', mode, steps: o.steps, warmup: 0 })).times);
        await settle();
      }
    }
    // Counted after timing: it patches layer prototypes, which slows later calls (V8 deopts).
    const flops = forwardFlops(model, x);
    const adafilter = side(o.batch, ours.forward, ours.train, flops, peakRssMb());
    const result: Record<string, unknown> = {
      arch: o.arch, batch: o.batch, threads: o.threads, input_size: size, method: 'finetune', channels_last: o.channelsLast, precision, device,
      steps_timed: o.steps * o.rounds, forward_gflop: flops / 1e9, machine: machineInfo(), adafilter,
    };
    if (peer) {
      const rss = (await peer.request({ cmd: 'rss' })).peak_rss_mb;
      const pytorch = { ...side(o.batch, theirs.forward, theirs.train, flops, rss), torch: peerSetup.torch, forward_gflop: peerSetup.forward_flops / 1e9 };
      Object.assign(result, {
        pytorch,
        train_ratio: adafilter.train_img_s / pytorch.train_img_s,
        forward_ratio: adafilter.forward_img_s / pytorch.forward_img_s,
      });
    }
    return result;
  } finally {
    await peer?.close();
    model.dispose();
    opt.dispose();
  }
}
