import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { buildStepGraph } from '../../src/engine/onnx/tower-graphs.js';
import { buildTowerExport, readExportMetadata } from '../../src/export/onnx.js';
import { ExportedTowerDecoder } from '../../src/export/runtime.js';
import { initParams } from '../../src/model/params.js';
import { towerSpecs } from '../../src/model/tower.js';
import { TINY } from '../helpers.js';

const { onnx } = onnxProto;
const dir = mkdtempSync(join(tmpdir(), 'zipper-export-'));

function exported(): Uint8Array {
  const info = { format: 'zipper-checkpoint/1' as const, kind: 'tower', modality: 'text', step: 7, engine: 'ort', data: { epoch: 0, offset: 0, windows: 0, hash: '' }, metrics: {} };
  return buildTowerExport({ dir: 'ck', info, shape: TINY, params: initParams(towerSpecs(TINY), 1), tokenizer: '{"model":{}}', specials: { pad: 0, bos: 1, eos: 2 } }).bytes;
}

/** Writes `bytes` after changing (or, with null, removing) one zipper.* metadata entry. */
function withMeta(name: string, key: string, value: string | null): string {
  const m = onnx.ModelProto.decode(exported());
  m.metadataProps = m.metadataProps.filter((p) => p.key !== `zipper.${key}`);
  if (value !== null) m.metadataProps.push({ key: `zipper.${key}`, value });
  const file = join(dir, name);
  writeFileSync(file, onnx.ModelProto.encode(m).finish());
  return file;
}

test('readExportMetadata reads back what the export wrote', () => {
  const file = join(dir, 'good.onnx');
  writeFileSync(file, exported());
  const m = readExportMetadata(file);
  assert.equal(m.format, 'zipper-onnx/1');
  assert.equal(m.kind, 'tower');
  assert.equal(m.toolkit.name, 'zipper');
  assert.match(m.toolkit.version, /^\d+\.\d+\.\d+/);
  assert.deepEqual(m.config, TINY);
  assert.equal(m.step, 7);
  assert.equal(m.tokenizer, '{"model":{}}');
});

test('not an ONNX file: named', () => {
  for (const [name, bytes] of [['text.onnx', 'hello, this is text\n'], ['empty.onnx', ''], ['noise.onnx', Buffer.from([0xff, 0xfe, 0x07, 0x01, 0x99])]] as const) {
    const file = join(dir, name);
    writeFileSync(file, bytes);
    assert.throws(() => readExportMetadata(file), (e: Error) => e.message.startsWith(`${file} is not an ONNX file`), name);
  }
  assert.throws(() => readExportMetadata(join(dir, 'absent.onnx')), /cannot read ONNX export .*absent\.onnx: ENOENT/);
});

test('an ONNX file without zipper metadata (the engine graph itself): named', () => {
  const file = join(dir, 'plain.onnx');
  writeFileSync(file, buildStepGraph(TINY, 1).toBytes());
  assert.throws(() => readExportMetadata(file), new RegExp(`^Error: ${file} has no zipper metadata \\(no zipper\\.format entry; written by zipper\\): not a zipper export`));
});

test('another format version, another model kind, a missing entry: named', async () => {
  const v2 = withMeta('v2.onnx', 'format', 'zipper-onnx/2');
  assert.throws(() => readExportMetadata(v2), new RegExp(`${v2} is a zipper-onnx/2 export written by zipper \\S+; zipper \\S+ reads zipper-onnx/1: export the checkpoint again`));
  const zipped = withMeta('zipped.onnx', 'kind', 'zipper');
  assert.throws(() => readExportMetadata(zipped), new RegExp(`${zipped} holds a zipper, not a tower`));
  const noTok = withMeta('notok.onnx', 'tokenizer', null);
  assert.throws(() => readExportMetadata(noTok), new RegExp(`${noTok}: zipper metadata lacks zipper\\.tokenizer`));
  const badCfg = withMeta('badcfg.onnx', 'config', '{d_model: 3');
  assert.throws(() => readExportMetadata(badCfg), new RegExp(`${badCfg}: zipper metadata zipper\\.config is not valid JSON`));
  // The runtime checks before it loads anything.
  await assert.rejects(() => ExportedTowerDecoder.open(v2), /zipper-onnx\/2/);
});
