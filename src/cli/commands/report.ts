import { Command, parseFlags } from '../command';
import { InputError } from '../../errors';
import { writeReport } from '../../report';

const usage = `usage: adafilter report DIR... [--out OUTDIR] [--json]
  DIR: run folders (run.json, log.jsonl, result.json) and/or compare folders (compare.json; their
       runs are included). Writes OUTDIR/report.html (self-contained: inline SVG charts and CSS),
       OUTDIR/report.md and the charts it links to (OUTDIR/report-*.svg). OUTDIR defaults to the
       first DIR. The input folders are only read. --json prints the written paths as JSON.`;

export const reportCommand: Command = {
  name: 'report',
  summary: 'write an HTML and a Markdown report of run and compare folders (tables, curves, gate maps)',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, { out: { type: 'string' }, json: { type: 'boolean' } }, 'report');
    if (positionals.length === 0) throw new InputError('report: expected one or more run or compare folders (see --help)');
    if (values.out === '') throw new InputError('--out: expected a folder');
    const out = (values.out as string | undefined) ?? positionals[0];
    const files = await writeReport(positionals, out);
    if (values.json) {
      process.stdout.write(JSON.stringify(files, null, 2) + '\n');
    } else {
      process.stdout.write(`${files.html}\n${files.md}\n`);
    }
    return 0;
  },
};
