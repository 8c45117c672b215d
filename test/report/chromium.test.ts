/**
 * Renders report.html in headless Chromium and checks the screenshot is a page with charts on it:
 * the string tests cannot tell whether the inlined SVG actually draws in a browser.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { writeReport } from '../../src/report';
import { tmpDir, writeCompare } from './fixtures';

const CHROMIUM = '/usr/bin/chromium';

test('report.html renders in headless Chromium: a full page with coloured charts', async () => {
  if (!fs.existsSync(CHROMIUM)) {
    assert.fail(`${CHROMIUM} not found: install Chromium to run this test (apt-get install -y chromium; CI has it)`);
  }
  const root = tmpDir('chromium');
  const files = await writeReport([writeCompare(root)], path.join(root, 'out'));
  const shot = path.join(root, 'shot.png');
  const profile = fs.mkdtempSync(path.join(root, 'profile-'));
  const r = spawnSync(CHROMIUM, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, `--screenshot=${shot}`,
    '--window-size=1200,2000', pathToFileURL(files.html).href,
  ], { encoding: 'utf8', timeout: 45_000 });
  assert.equal(r.error, undefined, `chromium did not run: ${r.error}`);
  assert.ok(fs.existsSync(shot), `no screenshot written; chromium said:\n${r.stderr}`);
  if (process.env.ADAFILTER_KEEP_SCREENSHOT) fs.copyFileSync(shot, process.env.ADAFILTER_KEEP_SCREENSHOT);

  assert.ok(fs.statSync(shot).size > 30_000, `screenshot of ${fs.statSync(shot).size} bytes: too small for a page of charts`);
  const { data, info } = await sharp(shot).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height], [1200, 2000]);
  const stats = await sharp(shot).removeAlpha().stats();
  assert.ok(stats.channels.every((c) => c.stdev > 20), `a blank page? channel stdev ${stats.channels.map((c) => c.stdev.toFixed(1))}`);
  // Text alone is grey; the bars, curves and heatmap cells are saturated colour.
  let dark = 0, coloured = 0;
  for (let i = 0; i < data.length; i += 3) {
    const mx = Math.max(data[i], data[i + 1], data[i + 2]), mn = Math.min(data[i], data[i + 1], data[i + 2]);
    if (mx < 128) dark++;
    if (mx - mn > 80) coloured++;
  }
  const px = info.width * info.height;
  assert.ok(dark / px > 0.005, `only ${(100 * dark / px).toFixed(2)} % dark pixels: no text?`);
  assert.ok(coloured / px > 0.01, `only ${(100 * coloured / px).toFixed(2)} % coloured pixels: charts not drawn?`);
});
