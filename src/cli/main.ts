import { Command } from './command';
import { isInputError } from '../errors';
import { datasetsCommand } from './commands/datasets';
import { demoCommand } from './commands/demo';
import { trainCommand } from './commands/train';
import { evalCommand } from './commands/eval';
import { predictCommand } from './commands/predict';
import { compareCommand } from './commands/compare';
import { pretrainCommand } from './commands/pretrain';
import { reportCommand } from './commands/report';
import { modelsCommand } from './commands/models';
import { setupCommand } from './commands/setup';
import { analyzeCommand } from './commands/analyze';
import { selectCommand } from './commands/select';

/**
 * The library's commands. `bench` is not among them: it lives in bench/ (which src/ never
 * imports) and bin/adafilter.js passes it in with these.
 */
export const COMMANDS: readonly Command[] = [demoCommand, trainCommand, evalCommand, predictCommand, compareCommand, reportCommand, pretrainCommand, modelsCommand, datasetsCommand, setupCommand, analyzeCommand, selectCommand];

function help(commands: readonly Command[]): string {
  const lines = ['usage: adafilter <command> [options]', '', 'commands:'];
  for (const c of commands) lines.push(`  ${c.name.padEnd(12)} ${c.summary}`);
  lines.push('', "Run 'adafilter <command> --help' for a command's options.");
  return lines.join('\n');
}

/** Runs the CLI over `commands`; returns the exit code: 0 ok, 2 bad input, 1 internal error. */
export async function main(argv: string[], commands: readonly Command[] = COMMANDS): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help(commands) + '\n');
    return name === undefined ? 2 : 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`adafilter: unknown command '${name}' (try 'adafilter --help')\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.usage + '\n');
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (e) {
    if (isInputError(e)) {
      process.stderr.write(`adafilter ${name}: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`adafilter ${name}: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    return 1;
  }
}
