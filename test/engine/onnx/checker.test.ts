import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lmBatch } from '../../../src/data/lm.js';
import { batchSpec, paramLayout } from '../../../src/engine/onnx/layout.js';
import { buildLogitsGraph, buildPrefillGraph, buildStepGraph } from '../../../src/engine/onnx/tower-graphs.js';
import { buildEvalGraph, buildGradGraph, buildTrainGraph } from '../../../src/engine/onnx/train-graph.js';
import { towerModel } from '../../../src/model/tower.js';
import { TINY, randomRows } from '../../helpers.js';
import { frozenTiny } from './parity-helpers.js';

/** The ONNX checker (Debian's python3-onnx), with full shape inference, on every graph kind. */
const PY = '/usr/bin/python3';
const hasOnnx = spawnSync(PY, ['-c', 'import onnx'], { encoding: 'utf8' }).status === 0;

// CI installs python3-onnx and sets ZIPPER_REQUIRE_ONNX_CHECKER=1: there a missing checker fails.
const required = process.env.ZIPPER_REQUIRE_ONNX_CHECKER === '1';
test('every graph passes onnx.checker with full shape inference', { skip: hasOnnx || required ? false : 'python3-onnx not installed (apt-get install -y python3-onnx)' }, () => {
  assert.ok(hasOnnx, 'ZIPPER_REQUIRE_ONNX_CHECKER=1 but /usr/bin/python3 cannot import onnx');
  const dir = mkdtempSync(join(tmpdir(), 'zipper-check-'));
  try {
    const spec = batchSpec(lmBatch(randomRows(2, 9, TINY.vocab_size)));
    const opt = { betas: [0.9, 0.99] as const, eps: 1e-8, weightDecay: 0.1, clipNorm: 1 };
    const graphs = {
      train: buildTrainGraph(towerModel(TINY), paramLayout(towerModel(TINY)), opt, spec),
      train_frozen: buildTrainGraph(frozenTiny(), paramLayout(frozenTiny()), opt, spec),
      eval: buildEvalGraph(towerModel(TINY), paramLayout(towerModel(TINY)), spec),
      grad: buildGradGraph(towerModel(TINY), paramLayout(towerModel(TINY)), spec),
      logits: buildLogitsGraph(TINY, 2, 9),
      prefill: buildPrefillGraph(TINY, 2, 5),
      step: buildStepGraph(TINY, 2),
    };
    for (const [name, g] of Object.entries(graphs)) writeFileSync(join(dir, `${name}.onnx`), g.toBytes(name));
    const script = `
import onnx, sys, glob
for f in sorted(glob.glob(sys.argv[1] + '/*.onnx')):
    m = onnx.load(f)
    onnx.checker.check_model(m, full_check=True)
    print(f.split('/')[-1], m.ir_version, len(m.graph.node))
`;
    const r = spawnSync(PY, ['-c', script, dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, Object.keys(graphs).length, r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
