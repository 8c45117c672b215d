import { Command, intFlag, numberFlag, parseFlags } from '../command';
import { InputError } from '../../errors';
import { interruptible } from '../interruptible';
import { select } from '../../select';

const usage = `usage: adafilter select --data D [--backbone B ...] [--shots K] [--seed N] [--population P] [--generations G]
                        [--folds F] [--penalty X] [--epochs E] [--batch N] [--wd X] [--classes A,B,..] [--threads N]
                        [--workers N] [--val-fraction X] [--test-fraction X] --out DIR [--json]
  Evolutionary selection of frozen backbones' features (after Tian, Chen & Shyu 2020): which taps
  (the stem's output and every block output of each backbone, each mean- or max-pooled) feed a head,
  with the head's hidden width (0, 64, 256), dropout (0, 0.25, 0.5) and lr. Each backbone's tap
  outputs of the training and validation images are computed once, with its own preprocessing; each
  candidate's fitness is the F-fold cross-validated accuracy (stratified by class, seeded) of a head
  on the cached features of the training and validation images pooled, minus --penalty × (its
  feature width / all taps' width). Mutation-only evolutionary programming, elitist tournament
  selection (size 3); the first individual is the linear probe of the first backbone's last block.
  The best genome then trains as a run (method tap-probe over the backbones its taps read, E epochs,
  no augmentation) in DIR, which \`predict\`, \`eval\` and \`report\` read; the test split is read once,
  at its end. DIR/candidates.jsonl holds every candidate, DIR/select.json the settings, fitness by
  generation, the choice and the cost.
  --backbone B       a backbone spec (default: the shipped one); repeat it to search several: taps of
                     the K-th (from 0) are named NAME@K (NAME alone on the first). They must share input
                     size and channels and be pretrained; each keeps its own normalisation
  --folds F (3)      cross-validation folds over training + validation; 1: fitness is the validation
                     accuracy of a head trained on the training split (the fitness before --folds existed)
  --population P (8) --generations G (5, after the initial population)   --penalty X (0.01)
  --epochs E (30)    head training epochs (search and final run)   --batch N (32)   --wd X (5e-4)
  --seed N (0)       splits, sampling, the search and the heads' initialisation
  --val-fraction X, --test-fraction X  carved from the training data when the source has no such split (0.1, 0.2)`;

export const selectCommand: Command = {
  name: 'select',
  summary: 'evolutionary selection of a backbone\'s taps and head; ends in a run folder',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, {
      data: { type: 'string' }, backbone: { type: 'string', multiple: true }, shots: { type: 'string' }, seed: { type: 'string' },
      population: { type: 'string' }, folds: { type: 'string' }, generations: { type: 'string' }, penalty: { type: 'string' }, epochs: { type: 'string' },
      batch: { type: 'string' }, wd: { type: 'string' }, classes: { type: 'string' }, threads: { type: 'string' }, workers: { type: 'string' },
      out: { type: 'string' }, json: { type: 'boolean' }, 'val-fraction': { type: 'string' }, 'test-fraction': { type: 'string' },
    }, 'select');
    if (positionals.length) throw new InputError(`select: unexpected argument '${positionals[0]}'`);
    if (values.data === undefined) throw new InputError('select: --data is required (e.g. --data quickdraw:300-309)');
    if (values.out === undefined) throw new InputError('select: --out is required (the folder for the search and the final run)');
    const backbones = (values.backbone as string[] | undefined) ?? [];
    const s = (k: string) => values[k] as string | undefined;
    const opt = (k: string, min: number) => (s(k) === undefined ? undefined : intFlag(s(k), k, 0, min));
    return interruptible(async (_signal, progress) => {
      const r = await select({
        data: s('data')!, backbone: backbones.length ? backbones : undefined, folds: opt('folds', 1), shots: opt('shots', 1), seed: opt('seed', 0), population: opt('population', 2),
        generations: opt('generations', 0), penalty: s('penalty') === undefined ? undefined : numberFlag(s('penalty'), 'penalty', 0),
        epochs: opt('epochs', 1), batch: opt('batch', 1), weightDecay: s('wd') === undefined ? undefined : numberFlag(s('wd'), 'wd', 0),
        classes: s('classes')?.split(',').map((c) => c.trim()).filter(Boolean).map((c) => (/^\d+$/.test(c) ? Number(c) : c)),
        threads: opt('threads', 1), workers: opt('workers', 0), out: s('out')!,
        valFraction: s('val-fraction') === undefined ? undefined : numberFlag(s('val-fraction'), 'val-fraction', 0),
        testFraction: s('test-fraction') === undefined ? undefined : numberFlag(s('test-fraction'), 'test-fraction', 0),
        onGeneration: (g) => process.stderr.write(`generation ${g.generation}: best fitness ${g.bestFitness.toFixed(4)} (candidate ${g.best}), mean ${g.meanFitness.toFixed(4)}\n`),
        onEvent: progress.onEvent,
      });
      progress.stop();
      if (values.json) { process.stdout.write(JSON.stringify({ ...r, best: { ...r.best, genome: undefined } }, null, 2) + '\n'); return; }
      const b = r.best;
      const specs = backbones.length ? backbones : ['default'];
      const where = (k: number) => (specs.length > 1 ? ` of ${specs[k]}` : '');
      process.stdout.write(`selected ${b.taps.map((t) => `${t.name}:${t.pool}${where(t.backbone)}`).join(', ')} (width ${b.width}), hidden ${b.hidden}, dropout ${b.dropout}, lr ${b.lr}: `
        + `fitness ${b.fitness.toFixed(4)} (held out ${(100 * b.valAcc).toFixed(2)}%), ${r.evaluated} candidates scored\n`
        + `final run${specs.length > 1 ? ` over ${r.backbones.join(' + ')}` : ''}: val ${(100 * r.run.val.acc).toFixed(2)}%, test ${(100 * r.run.test.acc).toFixed(2)}% → ${r.dir}\n`);
    });
  },
};
