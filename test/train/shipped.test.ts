import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSafetensorsHeader } from '../../src/io/safetensors';
import { META } from '../../src/train/backbones';
import { DEFAULT_SOURCE, SHIPPED, TARGET_SCRIPTS } from '../../src/train/shipped';
import { ModelCard } from '../../src/train/pretrain';

const cardOf = (file: string): ModelCard => JSON.parse(readSafetensorsHeader(file).metadata![META.card]);
const words = (cmd: string) => cmd.replace(/'/g, '').split(/\s+/).filter(Boolean);

test('every shipped backbone is in the package with a card whose command is the one we document', () => {
  for (const b of SHIPPED) {
    assert.ok(fs.existsSync(b.file), `${b.name}: ${b.file}`);
    assert.ok(fs.statSync(b.file).size < 10 * 1024 * 1024, `${b.name}: under 10 MB`);
    const card = cardOf(b.file);
    assert.ok(fs.existsSync(b.file.replace(/\.safetensors$/, '.md')), `${b.name}: a model card beside it`);
    // A card that names this file as its output documents the rebuild command, flag for flag
    // (doodles-resnet20 was written as the default of its day, so its card names default.safetensors).
    const own = words(card.command).includes(`weights/${path.basename(b.file)}`);
    if (own) assert.deepEqual(words(card.command), words(b.build), b.name);
    if (b.name === 'default') {
      assert.ok(own, 'the default\'s card names weights/default.safetensors');
      assert.equal(card.source, DEFAULT_SOURCE);
      assert.ok(card.classes >= 1000 + 245, `${card.classes} classes`);
    }
  }
  assert.deepEqual(SHIPPED.map((b) => b.name).sort(), ['default', 'doodles-glyphs-resnet20', 'doodles-resnet20']);
});

test('the default was pretrained without the benchmark\'s target scripts', () => {
  const card = cardOf(SHIPPED.find((b) => b.name === 'default')!.file);
  for (const s of TARGET_SCRIPTS) assert.ok(!card.classNames.some((c) => c.startsWith(`glyphs:${s}:`)), `${s} absent`);
  assert.ok(card.classNames.some((c) => c.startsWith('glyphs:Latin:')), 'other scripts are there');
});
