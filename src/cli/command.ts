import { parseArgs, ParseArgsConfig } from 'node:util';

export type ParsedFlags = { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] };
import { InputError } from '../errors';

/** One CLI command (or a group of subcommands, such as `bench throughput`). */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs in strict mode, with its errors turned into one-line InputErrors. */
export function parseFlags(argv: string[], options: Options, where: string): ParsedFlags {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (e) {
    throw new InputError(`${where}: ${(e as Error).message.split('\n')[0]}`);
  }
}

export function intFlag(value: string | undefined, name: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InputError(`--${name}: expected an integer >= ${min}, got '${value}'`);
  return n;
}

export function numberFlag(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new InputError(`--${name}: expected a number, got '${value}'`);
  return n;
}
