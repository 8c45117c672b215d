import { Command, intFlag, parseFlags } from '../command';
import { InputError } from '../../errors';
import { NATIVE_BUILD_SCRIPT } from '../../engine/native';

const usage = `usage: adafilter setup [--rebuild] [--jobs N]
  Builds the native addon against libtorch when it is missing or does not load (npm runs no
  install scripts of dependencies, so an installed adafilter is built here, once). Needs libtorch
  (Debian's libtorch-dev, or LIBTORCH=FOLDER with include/ and lib/: the official archive or a pip
  install's torch/), a C++ toolchain (g++, make), python3 and Node's headers.
  --rebuild   build even when the addon loads (after switching LIBTORCH)
  --jobs N    parallel compile jobs (default: the number of CPUs)`;

/** native/build.js's exports. */
interface NativeBuild {
  ADDON: string;
  MissingPrerequisite: new (message: string) => Error;
  missingPrerequisite(): string | null;
  build(o: { jobs?: number }): void;
  addonStatus(): { problem: string | null; version?: string };
}

const nativeBuild = (): NativeBuild => require(NATIVE_BUILD_SCRIPT) as NativeBuild;

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { rebuild: { type: 'boolean' }, jobs: { type: 'string' } }, 'setup');
  if (positionals.length) throw new InputError(`setup: unexpected argument '${positionals[0]}'`);
  const jobs = values.jobs === undefined ? undefined : intFlag(values.jobs as string, 'jobs', 1);
  const nb = nativeBuild();
  const before = nb.addonStatus();
  if (before.problem === null && !values.rebuild) {
    process.stdout.write(`native addon ready (libtorch ${before.version}): ${nb.ADDON}\n`);
    return 0;
  }
  const missing = nb.missingPrerequisite();
  if (missing !== null) throw new InputError(missing);
  process.stderr.write(`adafilter setup: building the native addon (libtorch: ${process.env.LIBTORCH ?? "Debian's libtorch-dev"}); a few minutes\n`);
  try {
    nb.build({ jobs });
  } catch (e) {
    if (e instanceof nb.MissingPrerequisite) throw new InputError(e.message);
    process.stderr.write(`adafilter setup: ${(e as Error).message}\n`);
    return 1;
  }
  const after = nb.addonStatus();
  if (after.problem !== null) {
    process.stderr.write(`adafilter setup: built, but ${after.problem}\n`);
    return 1;
  }
  process.stdout.write(`native addon ready (libtorch ${after.version}): ${nb.ADDON}\n`);
  return 0;
}

export const setupCommand: Command = {
  name: 'setup',
  summary: 'build the native addon against libtorch (once, after npm install)',
  usage,
  run,
};
