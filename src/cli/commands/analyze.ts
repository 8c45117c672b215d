import { Command, intFlag, numberFlag, parseFlags } from '../command';
import { InputError } from '../../errors';
import { analyzeSimilarity, Pooling, SimilarityMetric } from '../../analysis';
import { writeJsonAtomic } from '../../io/atomic';

const usage = `usage: adafilter analyze similarity A B --data D [--metric cka|svcca] [--split val|train]
                                  [--images 500] [--layers L1,L2,...] [--pool mean|flat] [--batch 50]
                                  [--keep 0.99] [--seed N] [--threads N] [--json] [--out FILE.json]
  Per-layer similarity of two models on the same images of D. A and B are run folders or backbone
  specs (default, an architecture, a weights file), e.g. the pretrained backbone against a run
  fine-tuned from it. Layers: every block output, matched by name, averaged over H×W (--pool mean)
  or flattened (--pool flat: C·H·W features, minibatch CKA over batches of --batch images).
  --metric cka: linear CKA and its debiased form; svcca: SVD to the directions keeping --keep of
  the variance, then the mean canonical correlation. --split val (default) uses images no run
  trained on; a run's own seed and split fractions re-derive them (or --seed).
  --json prints {"layers": [{"name", "cka", "ckaDebiased" | "svcca", ...}, ...]}; --out writes the same
  JSON to a file. Kept in a run folder as RUN/similarity*.json, \`adafilter report\` draws it as a
  layer × method heatmap (e.g. analyze similarity default RUN --data D --out RUN/similarity.json).`;

const fmt = (v: number | null | undefined) => (v === null || v === undefined ? 'n/a' : v.toFixed(4));

export const analyzeCommand: Command = {
  name: 'analyze',
  summary: 'compare representations: per-layer CKA / SVCCA between two models',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, {
      data: { type: 'string' }, metric: { type: 'string' }, split: { type: 'string' }, images: { type: 'string' },
      layers: { type: 'string' }, pool: { type: 'string' }, batch: { type: 'string' }, keep: { type: 'string' }, seed: { type: 'string' }, threads: { type: 'string' }, json: { type: 'boolean' }, out: { type: 'string' },
    }, 'analyze');
    const [sub, ...specs] = positionals;
    if (sub !== 'similarity') throw new InputError(`analyze: unknown analysis '${sub ?? ''}' (known: similarity)`);
    if (specs.length !== 2) throw new InputError(`analyze similarity: expected two models A B (run folders or backbones), got ${specs.length}`);
    if (values.data === undefined) throw new InputError('analyze similarity: --data is required (the images both models see)');
    const out = values.out as string | undefined;
    if (out !== undefined && !out.endsWith('.json')) throw new InputError(`--out: expected a .json file, got '${out}'`);
    const r = await analyzeSimilarity(specs[0], specs[1], {
      data: values.data as string,
      metric: values.metric as SimilarityMetric | undefined,
      split: values.split as 'val' | 'train' | undefined,
      images: intFlag(values.images as string | undefined, 'images', 500, 4),
      layers: values.layers === undefined ? undefined : (values.layers as string).split(',').map((s) => s.trim()).filter(Boolean),
      pool: values.pool as Pooling | undefined,
      batch: intFlag(values.batch as string | undefined, 'batch', 50, 4),
      keep: numberFlag(values.keep as string | undefined, 'keep', 0.99),
      seed: values.seed === undefined ? undefined : intFlag(values.seed as string, 'seed', 0, 0),
      threads: values.threads === undefined ? undefined : intFlag(values.threads as string, 'threads', 1),
    });
    if (out !== undefined) writeJsonAtomic(out, r); // a bad path or a full disk is one InputError line
    if (values.json) { process.stdout.write(JSON.stringify(r, null, 2) + '\n'); return 0; }
    const how = r.pool === 'flat' ? `block outputs flattened, minibatch CKA over ${r.batches} batches` : 'block outputs, mean over H×W';
    const lines = [`${r.metric === 'cka' ? 'linear CKA' : 'SVCCA'} of ${r.a} vs ${r.b} on ${r.images} ${r.split} images of ${r.data} (${how})`];
    if (r.metric === 'cka') {
      lines.push(`${'layer'.padEnd(16)} ${'width'.padStart(11)} ${'CKA'.padStart(8)} ${'debiased'.padStart(9)}`);
      for (const l of r.layers) lines.push(`${l.name.padEnd(16)} ${`${l.widthA}/${l.widthB}`.padStart(11)} ${fmt(l.cka).padStart(8)} ${fmt(l.ckaDebiased).padStart(9)}`);
    } else {
      lines.push(`${'layer'.padEnd(16)} ${'width'.padStart(11)} ${'kept'.padStart(9)} ${'SVCCA'.padStart(8)}`);
      for (const l of r.layers) lines.push(`${l.name.padEnd(16)} ${`${l.widthA}/${l.widthB}`.padStart(11)} ${`${l.dimsA}/${l.dimsB}`.padStart(9)} ${fmt(l.svcca).padStart(8)}`);
      // CCA needs many more images than directions: with few, every correlation tends to 1.
      const widest = Math.max(...r.layers.map((l) => Math.max(l.dimsA ?? 0, l.dimsB ?? 0)));
      if (widest * 5 > r.images) process.stderr.write(`note: up to ${widest} directions kept from ${r.images} images; SVCCA is biased towards 1 unless images ≫ directions (raise --images)\n`);
    }
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  },
};
