import { Command, intFlag, parseFlags } from '../command';
import { InputError } from '../../errors';
import { pretrain } from '../../train/pretrain';
import { DIST_FLAGS_USAGE, TRAIN_FLAGS, distJobOf, trainOptionsOf } from '../train-flags';
import { leaveJob } from '../../train/data-parallel';
import { relaunch } from '../../dist/relaunch';
import { interruptible } from '../interruptible';

const usage = `usage: adafilter pretrain --arch A --data SOURCE --out WEIGHTS.safetensors [--run DIR] [--epochs N --batch N --lr X --seed N ...]
  Trains architecture A from scratch on SOURCE (keep the transfer targets out of it) and writes
  its backbone weights with architecture, preprocessing and a model card (WEIGHTS.md beside it).
  SOURCE may compose sources with their labels kept apart: quickdraw:0-244+glyphs:scripts=all;exclude=Armenian
  (see docs/data.md). The shipped backbones' exact commands are in weights/default.md and
  weights/doodles-resnet20.md. The run folder (--run, default runs/pretrain-A)
  keeps the training log; --resume continues it.
${DIST_FLAGS_USAGE}`;

export const pretrainCommand: Command = {
  name: 'pretrain',
  summary: 'train a backbone from scratch on a source task and write it with a model card',
  usage,
  async run(argv) {
    const flags = { ...TRAIN_FLAGS, arch: { type: 'string' as const }, run: { type: 'string' as const }, seed: { type: 'string' as const }, resume: { type: 'boolean' as const } };
    const { values, positionals } = parseFlags(argv, flags, 'pretrain');
    if (positionals.length) throw new InputError(`pretrain: unexpected argument '${positionals[0]}'`);
    if (!values.arch) throw new InputError('pretrain: --arch is required');
    const weights = values.out as string | undefined;
    if (!weights) throw new InputError('pretrain: --out WEIGHTS.safetensors is required');
    const { backbone: _b, methodOptions: _m, shots: _s, out: _o, ...opts } = trainOptionsOf(values, 'pretrain');
    // Pasted into a shell as written: a composed source's ';' would end the command, so quote such words.
    const shellWord = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
    const command = `adafilter pretrain ${argv.filter((a) => a !== '--resume').map(shellWord).join(' ')}`;
    const job = distJobOf(values);
    if (job.launcher) return relaunch(job.launcher, 'pretrain', argv);
    return interruptible(async (signal, progress) => {
      const card = await pretrain({
        ...opts, arch: values.arch as string, weights, out: (values.run as string | undefined) ?? `runs/pretrain-${values.arch}`,
        seed: intFlag(values.seed as string | undefined, 'seed', 0, 0), resume: Boolean(values.resume), signal, onEvent: progress.onEvent, dist: job.dist,
      }, command);
      await leaveJob();
      if (!card) return; // rank 0 writes and reports for the job
      process.stdout.write(`${card.arch} on ${card.source}: val ${(100 * card.valAcc).toFixed(2)}%, test ${(100 * card.testAcc).toFixed(2)}% → ${weights}\n`);
    });
  },
};
