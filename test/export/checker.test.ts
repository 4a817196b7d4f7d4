import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTowerExport } from '../../src/export/onnx.js';
import { initParams } from '../../src/model/params.js';
import { towerSpecs } from '../../src/model/tower.js';
import { TINY } from '../helpers.js';

// Debian's python3 (python3-onnx is a Debian package); a pyenv python3 on PATH would not see it.
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const REQUIRED = process.env.ZIPPER_REQUIRE_ONNX_CHECKER === '1';

const CHECK = `
import json, sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
meta = {p.key: p.value for p in m.metadata_props}
print(json.dumps({"onnx": onnx.__version__, "opsets": [[o.domain, o.version] for o in m.opset_import],
  "domains": sorted({n.domain for n in m.graph.node}), "format": meta.get("zipper.format"),
  "inputs": [i.name for i in m.graph.input], "outputs": [o.name for o in m.graph.output]}))
`;

function onnxMissing(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import onnx'], { encoding: 'utf8' });
  if (r.error) return `${PYTHON} not found`;
  return r.status === 0 ? null : `${PYTHON} has no onnx module (apt-get install -y python3-onnx)`;
}

test('the exported file passes the ONNX checker with full_check', (t) => {
  const missing = onnxMissing();
  if (missing) {
    assert.ok(!REQUIRED, `ZIPPER_REQUIRE_ONNX_CHECKER=1 but ${missing}`);
    t.skip(`${missing}; set ZIPPER_REQUIRE_ONNX_CHECKER=1 to make this a failure`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'zipper-checker-'));
  const info = { format: 'zipper-checkpoint/1' as const, kind: 'tower', modality: 'text', step: 1, engine: 'ort', data: { epoch: 0, offset: 0, windows: 0, hash: '' }, metrics: {} };
  for (const batch of [1, 3]) {
    const file = join(dir, `b${batch}.onnx`);
    writeFileSync(file, buildTowerExport({ dir, info, shape: TINY, params: initParams(towerSpecs(TINY), 2), tokenizer: '{}', specials: { pad: 0, bos: 1, eos: 2 } }, batch).bytes);
    const r = spawnSync(PYTHON, ['-c', CHECK, file], { encoding: 'utf8' });
    assert.equal(r.status, 0, `onnx.checker rejected ${file}:\n${r.stderr}`);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.opsets, [['', 17]]);
    assert.deepEqual(out.domains, ['']);
    assert.equal(out.format, 'zipper-onnx/1');
    assert.deepEqual(out.inputs, ['ids', 'positions', 'mask', 'past_k0', 'past_v0', 'past_k1', 'past_v1']);
    assert.deepEqual(out.outputs, ['logits', 'k0', 'v0', 'k1', 'v1']);
    console.log(`# onnx ${out.onnx} checker (full_check): batch ${batch} ok`);
  }
});
