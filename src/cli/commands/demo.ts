import { Command, parseFlags } from '../command';
import { benchCommand } from './bench';

/**
 * The main job on the embedded default. Until fine-tuning methods and the shipped backbone land,
 * it is the engine's headline check: resnet20 trained here and in PyTorch, side by side.
 */
export const demoCommand: Command = {
  name: 'demo',
  summary: 'the main job, no flags needed (for now: the throughput benchmark against PyTorch)',
  usage: 'usage: adafilter demo [--json]\n  For now runs `adafilter bench throughput --arch resnet20`.',
  async run(argv) {
    const { values } = parseFlags(argv, { json: { type: 'boolean' } }, 'demo');
    process.stderr.write('adafilter demo: timing resnet20 training steps here and in PyTorch (about a minute)\n');
    return benchCommand.run(['throughput', '--arch', 'resnet20', ...(values.json ? ['--json'] : [])]);
  },
};
