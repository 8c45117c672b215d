/**
 * `models export --format web` end to end: a trained run exported as a page, served over http,
 * opened in headless Chromium (playwright-core driving Debian's chromium) with real image files,
 * must give the probabilities `adafilter predict` gives for the same files.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium } from 'playwright-core';
import { openSource } from '../../src/data/registry';
import { Rng } from '../../src/data/rng';
import { encodePng } from '../../bench/transfer-data';
import { decodeImage } from '../../src/data/decode';
import { applyTransform, evalTransform, resolveTransform } from '../../src/data/transforms';
import { cli, SMALL, tmpDir } from '../train/helpers';

const CHROMIUM = '/usr/bin/chromium';
const TYPES: Record<string, string> = {
  '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json',
  '.wasm': 'application/wasm', '.onnx': 'application/octet-stream',
};

/** A static server for `dir` on 127.0.0.1 (random port), recording every path asked for. */
async function serve(dir: string): Promise<{ base: string; asked: string[]; close: () => Promise<void> }> {
  const asked: string[] = [];
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '') || 'index.html';
    asked.push(rel);
    const file = path.join(dir, rel);
    if (!file.startsWith(dir + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { base: `http://127.0.0.1:${port}/`, asked, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

interface CliPrediction { file: string; top: { class: string; index: number; probability: number }[] }
interface PagePrediction { file: string; input?: number[]; probabilities?: number[]; top?: { class: string; probability: number }[]; error?: string }

test('models export --format web: the page in Chromium gives predict\'s classes and probabilities', async () => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} not found: install Chromium to run this test (apt-get install -y chromium; scripts/setup.sh does)`);
  const root = tmpDir('web-export');
  const run = path.join(root, 'run');
  const tr = cli('train', ...SMALL, '--epochs', '1', '--out', run);
  assert.equal(tr.status, 0, tr.stderr);

  // A real Quick Draw drawing (grey, 28 px: enlarged to the run's 32 px) and a seeded RGB
  // image, not square (enlarged, then centre-cropped): both as PNG files a user would drop.
  const ds = await openSource('quickdraw:300-302');
  assert.equal(ds.storage.kind, 'memory');
  const st = ds.storage as Extract<typeof ds.storage, { kind: 'memory' }>;
  const px = st.height * st.width * st.channels;
  const item = ds.splits.train.at(-1)!;
  const drawing = path.join(root, 'drawing.png');
  fs.writeFileSync(drawing, encodePng(new Uint8Array(st.pixels).subarray(item.index * px, (item.index + 1) * px), st.width, st.height, st.channels as 1 | 3));
  const rng = new Rng(17, 1);
  const rgb = new Uint8Array(30 * 20 * 3).map(() => rng.int(256));
  const noise = path.join(root, 'rgb-30x20.png');
  fs.writeFileSync(noise, encodePng(rgb, 30, 20, 3));

  const page = path.join(root, 'page');
  const ex = cli('models', 'export', run, '--format', 'web', '--out', page);
  assert.equal(ex.status, 0, ex.stderr);
  for (const f of ['index.html', 'app.js', 'model.json', 'model.onnx', 'ort.wasm.min.mjs', 'ort-wasm-simd-threaded.wasm']) {
    assert.ok(fs.existsSync(path.join(page, f)), `${f} missing from the export`);
  }
  // A second export replaces the first; a folder of someone else's files is refused untouched.
  const again = cli('models', 'export', run, '--format', 'web', '--out', page);
  assert.equal(again.status, 0, again.stderr);
  const foreign = path.join(root, 'foreign');
  fs.mkdirSync(foreign);
  fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
  const refused = cli('models', 'export', run, '--format', 'web', '--out', foreign);
  assert.equal(refused.status, 2, refused.stderr);
  assert.match(refused.stderr, /exists and is not an earlier web export/);
  assert.deepEqual(fs.readdirSync(foreign), ['notes.txt']);
  assert.deepEqual(fs.readdirSync(root).filter((f) => f.endsWith('.tmp') || f.endsWith('.old')), [], 'no temporary folders left');
  const info = JSON.parse(fs.readFileSync(path.join(page, 'model.json'), 'utf8'));
  const runJson = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
  assert.deepEqual(info.classes, runJson.classes);
  assert.deepEqual(info.transform.mean, runJson.input.resolvedStats.mean);

  const pr = cli('predict', run, drawing, noise, '--top', '3', '--json');
  assert.equal(pr.status, 0, pr.stderr);
  const expected = JSON.parse(pr.stdout) as CliPrediction[];

  const server = await serve(fs.realpathSync(page));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  let got: PagePrediction[];
  const offsite: string[] = [];
  try {
    const tab = await browser.newPage({ viewport: { width: 900, height: 700 } });
    tab.on('request', (r) => { if (!r.url().startsWith(server.base) && !r.url().startsWith('blob:') && !r.url().startsWith('data:')) offsite.push(r.url()); });
    const errors: string[] = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    await tab.goto(server.base);
    await tab.waitForFunction("document.body.dataset.state !== 'loading'", undefined, { timeout: 60_000 });
    assert.equal(await tab.evaluate('document.body.dataset.state'), 'ready', `the page did not load: ${await tab.textContent('#status')} ${errors.join('; ')}`);
    await tab.setInputFiles('#file', [drawing, noise]);
    await tab.waitForFunction("window.adafilterResults.length === 2 && document.body.dataset.state === 'ready'", undefined, { timeout: 60_000 });
    // Dropping a file on the page classifies it as choosing it does.
    const bytes = JSON.stringify([...fs.readFileSync(drawing)]);
    const dt = await tab.evaluateHandle(`(() => { const d = new DataTransfer();
      d.items.add(new File([new Uint8Array(${bytes})], 'dropped.png', { type: 'image/png' })); return d; })()`);
    await tab.dispatchEvent('#drop', 'drop', { dataTransfer: dt });
    await tab.waitForFunction("window.adafilterResults.length === 3 && document.body.dataset.state === 'ready'", undefined, { timeout: 60_000 });
    got = await tab.evaluate('window.adafilterResults.map((r) => ({ ...r, input: r.input && Array.from(r.input) }))') as PagePrediction[];
    assert.equal(got[2].file, 'dropped.png');
    assert.deepEqual(got[2].probabilities, got[0].probabilities, 'the dropped drawing');
    assert.equal(await tab.locator('.result').count(), 3, 'three result cards shown');
    assert.match(await tab.textContent('#results') ?? '', new RegExp(expected[0].top[0].class));
    const shot = path.join(root, 'page.png');
    await tab.screenshot({ path: shot, fullPage: true });
    if (process.env.ADAFILTER_KEEP_SCREENSHOT) fs.copyFileSync(shot, process.env.ADAFILTER_KEEP_SCREENSHOT);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await server.close();
  }
  assert.deepEqual(offsite, [], 'the page loads nothing from outside its folder');
  for (const f of ['model.onnx', 'model.json', 'app.js', 'ort.wasm.min.mjs', 'ort-wasm-simd-threaded.wasm']) assert.ok(server.asked.includes(f), `the page never asked for ${f}`);

  // The network's input, as predict builds it (load-run.ts's transform, decode.ts, applyTransform):
  // the browser decodes these lossless PNGs to the same pixels, so the same bits.
  const t = evalTransform(resolveTransform({ size: runJson.inputSize, channels: runJson.channels, normalize: runJson.input.resolvedStats }));
  let maxDiff = 0;
  for (let i = 0; i < 2; i++) {
    const g = got[i], e = expected[i];
    assert.equal(g.error, undefined, `${e.file}: ${g.error}`);
    const x = new Float32Array(t.channels * t.height * t.width);
    applyTransform(await decodeImage(fs.readFileSync(e.file), t.channels, e.file, t.resize), t, null, x, 0);
    assert.deepEqual(g.input, Array.from(x), `${e.file}: the page's input tensor differs from predict's`);
    assert.equal(g.file, path.basename(e.file));
    assert.equal(g.top![0].class, e.top[0].class, `${e.file}: top-1`);
    assert.equal(g.probabilities!.length, runJson.classes.length);
    for (const t of e.top) {
      const d = Math.abs(g.probabilities![t.index] - t.probability);
      maxDiff = Math.max(maxDiff, d);
      assert.ok(d <= 1e-4, `${e.file}: p(${t.class}) ${g.probabilities![t.index]} in the browser, ${t.probability} from predict`);
    }
  }
  console.log(`web export: browser vs predict, max |Δp| = ${maxDiff.toExponential(2)} over ${expected.length} images × ${runJson.classes.length} classes`);
});

test('models export --format web: bad format, a backbone, not a run, no --out, --input-size: one line, exit 2', () => {
  const root = tmpDir('web-export-bad');
  const run = path.join(root, 'run');
  fs.mkdirSync(run);
  const cases: [string[], RegExp][] = [
    [['models', 'export', run, '--format', 'html', '--out', path.join(root, 'x')], /--format must be onnx, safetensors or web, got 'html'/],
    [['models', 'export', 'resnet20', '--format', 'web', '--out', path.join(root, 'x')], /resnet20: not a run folder/],
    [['models', 'export', run, '--format', 'web', '--out', path.join(root, 'x')], /not a run folder/],
    [['models', 'export', run, '--format', 'web'], /--format web needs --out DIR/],
    [['models', 'export', run, '--format', 'web', '--input-size', '64', '--out', path.join(root, 'x')], /--input-size does not apply/],
  ];
  for (const [args, msg] of cases) {
    const r = cli(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  assert.ok(!fs.existsSync(path.join(root, 'x')));
});
