import { Command, intFlag, numberFlag, parseFlags } from '../command';
import { InputError } from '../../errors';
import { SOURCES, openDataset } from '../../data/registry';
import { splitCounts } from '../../data/dataset';
import { writeContactSheet } from '../../data/sheet';

const usage = `usage: adafilter datasets list [--json]
       adafilter datasets inspect NAME [--json] [--sheet FILE.png] [--seed N] [--val F] [--test F]
                                      [--shots K] [--classes A,B,...] [--channels 1|3] [--skip-bad]
  NAME: mnist, fashion-mnist, quickdraw[:CLASSES], glyphs[:scripts=A,B;samples=N;size=N;max=N],
        folder:PATH (or a path). inspect prints classes, counts per split, image size, source and
        licence; --sheet writes a PNG grid of samples (8 per class, first 16 classes).`;

async function list(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { json: { type: 'boolean' } }, 'datasets list');
  if (positionals.length) throw new InputError(`datasets list: unexpected argument '${positionals[0]}'`);
  const rows = SOURCES.map((s) => ({ name: s.usage, summary: s.summary, license: s.license, available: s.available() }));
  if (values.json) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
  } else {
    for (const r of rows) {
      const mark = r.available === false ? '  (not installed)' : '';
      process.stdout.write(`${r.name.padEnd(44)} ${r.summary}; ${r.license}${mark}\n`);
    }
  }
  return 0;
}

async function inspect(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, {
    json: { type: 'boolean' }, sheet: { type: 'string' }, seed: { type: 'string' }, val: { type: 'string' },
    test: { type: 'string' }, shots: { type: 'string' }, classes: { type: 'string' }, channels: { type: 'string' },
    'skip-bad': { type: 'boolean' },
  }, 'datasets inspect');
  if (positionals.length !== 1) throw new InputError('datasets inspect: expected one dataset NAME (see --help)');
  const channels = values.channels === undefined ? undefined : intFlag(values.channels as string, 'channels', 3);
  if (channels !== undefined && channels !== 1 && channels !== 3) throw new InputError(`--channels: expected 1 or 3, got ${channels}`);
  const classes = (values.classes as string | undefined)?.split(',').map((s) => s.trim()).filter(Boolean)
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  const ds = await openDataset(positionals[0], {
    seed: intFlag(values.seed as string | undefined, 'seed', 0, 0),
    val: values.val === undefined ? undefined : numberFlag(values.val as string, 'val', 0.1),
    test: values.test === undefined ? undefined : numberFlag(values.test as string, 'test', 0.2),
    shots: values.shots === undefined ? undefined : intFlag(values.shots as string, 'shots', 1),
    classes,
    channels: channels as 1 | 3 | undefined,
    skipBad: Boolean(values['skip-bad']),
  });
  const info = {
    name: ds.name,
    num_classes: ds.classes.length,
    classes: ds.classes,
    counts: splitCounts(ds),
    image_size: ds.imageSize,
    channels: ds.channels,
    source: ds.source,
    license: ds.license,
    skipped: { count: ds.skipped.length, files: ds.skipped },
    sheet: undefined as string | undefined,
  };
  if (values.sheet) {
    await writeContactSheet(ds, values.sheet as string);
    info.sheet = values.sheet as string;
  }
  if (values.json) {
    process.stdout.write(JSON.stringify(info, null, 2) + '\n');
  } else {
    const shown = ds.classes.length > 12 ? `${ds.classes.slice(0, 12).join(', ')}, ... (${ds.classes.length})` : ds.classes.join(', ');
    const lines = [
      `dataset  ${ds.name}`,
      `classes  ${shown}`,
      `splits   ${Object.entries(info.counts).map(([k, v]) => `${k} ${v}`).join(', ')}`,
      `images   ${ds.imageSize ? `${ds.imageSize[0]}x${ds.imageSize[1]}` : 'mixed sizes'}, ${ds.channels} channel${ds.channels > 1 ? 's' : ''}`,
      `source   ${ds.source}`,
      `license  ${ds.license}`,
    ];
    if (info.sheet) lines.push(`sheet    ${info.sheet}`);
    process.stdout.write(lines.join('\n') + '\n');
  }
  if (ds.skipped.length) {
    process.stderr.write(`skipped ${ds.skipped.length} bad file${ds.skipped.length > 1 ? 's' : ''}:\n`);
    for (const s of ds.skipped) process.stderr.write(`  ${s.path}: ${s.reason}\n`);
  }
  return 0;
}

export const datasetsCommand: Command = {
  name: 'datasets',
  summary: 'list the data sources; inspect one (classes, counts, contact sheet)',
  usage,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === 'list') return list(rest);
    if (sub === 'inspect') return inspect(rest);
    throw new InputError(`unknown subcommand '${sub ?? ''}' (list, inspect)`);
  },
};
