import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { runZipper } from './run-cli.js';

test('zipper doctor reports backends, onnxruntime providers and versions', () => {
  const r = runZipper(['doctor', '--json'], tmpdir());
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  const text = JSON.stringify(report);
  // wasm and cpu ship with the npm packages, so they must work everywhere; tensorflow cannot here.
  assert.match(text, /"wasm"/);
  assert.match(text, /SIMD/);
  assert.match(text, /onnxruntime|ort/i);
  const human = runZipper(['doctor'], tmpdir());
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /ok wasm/);
  assert.match(human.stdout, /ok cpu/);
  assert.match(human.stdout, /onnxruntime \d+\.\d+/);
});
