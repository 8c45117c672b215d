/**
 * Training progress for people: a live bar on a terminal (cli-progress: maintained, widely used,
 * redraws in place without flicker and cleans up after itself), one plain line per epoch otherwise
 * (logs, CI, pipes). Always on stderr, so --json output on stdout stays machine-readable.
 */
import * as cliProgress from 'cli-progress';
import type { TrainEvent } from '../train/options';

const fmt = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

function eta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  return m ? `${m}m${String(s).padStart(2, '0')}s` : `${s}s`;
}

export interface ProgressOptions {
  /** Default: whether stderr is a terminal. */
  tty?: boolean;
  /** Without a terminal: a plain progress line at most this often within an epoch (default 60 s; long epochs of pretraining). */
  lineEverySeconds?: number;
  /** Prefix for each line (compare: the method and seed). */
  label?: string;
  stream?: NodeJS.WriteStream;
}

export function progressReporter(o: ProgressOptions = {}): { onEvent: (e: TrainEvent) => void; stop: () => void } {
  const stream = o.stream ?? process.stderr;
  const tty = o.tty ?? Boolean(stream.isTTY);
  const label = o.label ? `${o.label} ` : '';
  let bar: cliProgress.SingleBar | null = null;
  let epochs = 0, perEpoch = 0, done = 0, started = 0, startDone = 0, lastLine = 0;
  const lineEvery = 1000 * (o.lineEverySeconds ?? 60);
  const remaining = () => eta((epochs * perEpoch - done) / ((done - startDone) / Math.max(1e-3, (Date.now() - started) / 1000)));
  const write = (s: string) => stream.write(s + '\n');
  const stop = () => { bar?.stop(); bar = null; };
  const onEvent = (e: TrainEvent) => {
    switch (e.type) {
      case 'start':
        epochs = e.epochs; perEpoch = e.stepsPerEpoch;
        done = startDone = e.startEpoch * perEpoch + e.startStep;
        started = lastLine = Date.now();
        if (!tty) write(`${label}training: ${e.description}; ${epochs} epochs × ${perEpoch} steps → ${e.dir}${done ? ` (resumed at epoch ${e.startEpoch + 1}, step ${e.startStep})` : ''}`);
        else {
          bar = new cliProgress.SingleBar({
            stream, hideCursor: true, clearOnComplete: true, etaBuffer: 50,
            format: `${label}epoch {epoch}/{epochs} |{bar}| step {step}/{steps} loss {loss} acc {acc} {ips} img/s ETA {eta_s}`,
          }, cliProgress.Presets.shades_classic);
          bar.start(epochs * perEpoch, done, { epoch: e.startEpoch + 1, epochs, step: e.startStep, steps: perEpoch, loss: '-', acc: '-', ips: '-', eta_s: '--' });
        }
        break;
      case 'step': {
        done = e.epoch * perEpoch + e.step;
        const rate = (done - startDone) / Math.max(1e-3, (Date.now() - started) / 1000);
        bar?.update(done, {
          epoch: e.epoch + 1, step: e.step, loss: fmt(e.loss), acc: fmt(e.acc, 2), ips: Math.round(e.imagesPerSec),
          eta_s: eta((epochs * perEpoch - done) / rate),
        });
        if (!tty && Date.now() - lastLine >= lineEvery) {
          lastLine = Date.now();
          write(`${label}epoch ${e.epoch + 1}/${epochs} step ${e.step}/${perEpoch}: loss ${fmt(e.loss)} | ${Math.round(e.imagesPerSec)} img/s, ETA ${remaining()}`);
        }
        break;
      }
      case 'epoch': {
        lastLine = Date.now();
        const line = `${label}epoch ${e.epoch}/${e.epochs}: train loss ${fmt(e.trainLoss)} acc ${fmt(e.trainAcc)} | val loss ${fmt(e.valLoss)} acc ${fmt(e.valAcc)}${e.best ? ' (best)' : ''} | ${Math.round(e.imagesPerSec)} img/s, ${e.seconds.toFixed(1)} s${e.epoch < e.epochs ? `, ETA ${remaining()}` : ''}`;
        if (bar) { bar.stop(); write(line); bar.start(epochs * perEpoch, done, { epoch: Math.min(e.epoch + 1, epochs), epochs, step: 0, steps: perEpoch, loss: '-', acc: '-', ips: '-', eta_s: '--' }); }
        else write(line);
        break;
      }
      case 'test':
        stop();
        write(`${label}test (best validation weights): acc ${fmt(e.acc, 4)} loss ${fmt(e.loss)}`);
        break;
      case 'interrupted':
        stop();
        write(`${label}interrupted at epoch ${e.epoch + 1}, step ${e.step}: checkpoint saved (${e.checkpoint}); continue with --resume`);
        break;
    }
  };
  return { onEvent, stop };
}
