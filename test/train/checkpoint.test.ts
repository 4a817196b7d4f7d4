import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeSafetensors, encodeSafetensors } from '../../src/train/safetensors.js';
import { CHECKPOINT_FORMAT, latestCheckpoint, loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { initialState } from '../../src/engine/engine.js';
import { initParams } from '../../src/model/params.js';
import { towerModel } from '../../src/model/tower.js';
import { TINY } from '../helpers.js';

test('safetensors: round trip, header layout a PyTorch reader expects, and every corruption named', () => {
  const a = { name: 'a', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) };
  const b = { name: 'b.weight', shape: [1], data: Float32Array.from([-0.5]) };
  const bytes = encodeSafetensors([a, b], { format: 'x' });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + n) % 8, 0, 'data starts 8-byte aligned');
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString());
  assert.deepEqual(header.a, { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
  assert.deepEqual(header.__metadata__, { format: 'x' });
  const back = decodeSafetensors(bytes, 'f');
  assert.deepEqual(Array.from(back.tensors.get('a')!.data), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(Array.from(back.tensors.get('b.weight')!.data), [-0.5]);
  assert.throws(() => decodeSafetensors(bytes.subarray(0, bytes.length - 4), 'cut.safetensors'), /corrupt or truncated checkpoint cut\.safetensors/);
  assert.throws(() => decodeSafetensors(bytes.subarray(0, 5), 'tiny'), /too short/);
  const garbled = bytes.slice();
  garbled[9] = 0x7b; // '{' inside the header
  assert.throws(() => decodeSafetensors(garbled, 'g'), /header is not JSON/);
  const longer = new Uint8Array(bytes.length + 4);
  longer.set(bytes);
  assert.throws(() => decodeSafetensors(longer, 'l'), /trailing bytes/);
});

test('checkpoints: save, load, prune to keep_checkpoints, refuse a wrong or incomplete model', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'zipper-ckpt-')), 'checkpoints');
  const model = towerModel(TINY);
  const state = initialState(model, initParams(model.specs, 1));
  const info = (step: number) => ({ format: CHECKPOINT_FORMAT as typeof CHECKPOINT_FORMAT, kind: 'tower', modality: 'text', step, engine: 'tfjs', data: { epoch: 0, offset: step, windows: 9, hash: 'h' }, metrics: { train_loss: 1 } });
  for (const step of [10, 20, 30]) await saveCheckpoint(dir, state, model, info(step), { 'config.yaml': 'x: 1\n' }, 2);
  assert.deepEqual(readdirSync(dir).sort(), ['latest.json', 'step-0000020', 'step-0000030']);
  const latest = latestCheckpoint(dir)!;
  assert.ok(latest.endsWith('step-0000030'));
  const loaded = loadCheckpoint(latest, model, true);
  assert.equal(loaded.info.step, 30);
  for (const [k, v] of state.params) assert.deepEqual(loaded.state.params.get(k), v, k);
  assert.equal(readFileSync(join(latest, 'config.yaml'), 'utf8'), 'x: 1\n');
  const bigger = towerModel({ ...TINY, d_model: 24 });
  assert.throws(() => loadCheckpoint(latest, bigger, false), /has shape \[37,16\], the model needs \[37,24\]/);
  const deeper = towerModel({ ...TINY, n_layers: 3 });
  assert.throws(() => loadCheckpoint(latest, deeper, false), /no tensor "h\.2\.ln_1\.weight"/);
  writeFileSync(join(latest, 'state.json'), '{"format": "other/9"}');
  assert.throws(() => loadCheckpoint(latest, model, false), /format "other\/9"/);
});
