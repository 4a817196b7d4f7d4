import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { latestCheckpoint } from '../../src/train/checkpoint.js';
import { runZipper, scratch, startZipper, tinyPretrain } from './run-cli.js';

// Long enough that the killer (polling every 5 ms) always catches the run in the middle.
const STEPS = { ort: 600, tfjs: 120 };

for (const engine of ['ort', 'tfjs'] as const)
test(`${engine}: a run killed with SIGKILL mid-training and resumed ends with the same weights as an uninterrupted run`, async () => {
  const { dir, corpus } = scratch();
  const args = (name: string, more: string[] = []) => [...tinyPretrain(corpus, STEPS[engine], ['train.checkpoint_every=10'], engine), '--name', name, ...more];

  const full = runZipper(args('full'), dir);
  assert.equal(full.code, 0, full.stderr);

  // Start the same run and kill it hard once a mid-run checkpoint exists.
  const child = startZipper(args('killed'), dir);
  const ckpts = join(dir, 'runs', 'killed', 'checkpoints');
  let killedAt = -1;
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      try {
        const latest = existsSync(join(ckpts, 'latest.json')) ? JSON.parse(readFileSync(join(ckpts, 'latest.json'), 'utf8')).step : 0;
        if (latest >= 30) {
          killedAt = latest;
          child.kill('SIGKILL');
        }
      } catch {
        /* latest.json is replaced atomically, but a read may still race the rename: poll again */
      }
    }, 5);
    child.on('exit', (code, signal) => {
      clearInterval(timer);
      signal === 'SIGKILL' ? resolve() : reject(new Error(`run ended by itself (code ${code}) before it could be killed`));
    });
  });
  assert.ok(killedAt >= 30 && killedAt < STEPS[engine], `killed after checkpoint ${killedAt}`);
  // What was on disk at the kill is a complete checkpoint.
  assert.ok(existsSync(join(latestCheckpoint(ckpts)!, 'model.safetensors')));

  const resumed = runZipper(args('killed', ['--resume']), dir);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming from step \d+/);

  const a = readFileSync(join(latestCheckpoint(join(dir, 'runs', 'full', 'checkpoints'))!, 'model.safetensors'));
  const b = readFileSync(join(latestCheckpoint(ckpts)!, 'model.safetensors'));
  assert.ok(a.equals(b), 'final weights differ between the uninterrupted and the killed+resumed run');
  const metrics = readFileSync(join(dir, 'runs', 'killed', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const trainSteps = metrics.filter((m) => m.kind === 'train').map((m) => m.step);
  assert.deepEqual(trainSteps, [...new Set(trainSteps)], 'metrics repeat steps after resume');

  // Re-running a finished run is a no-op that says so.
  const again = runZipper(args('killed', ['--resume']), dir);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /already finished/);
});

test('a run started on the tfjs engine resumes on the ONNX engine and keeps learning', () => {
  const { dir, corpus } = scratch();
  const first = runZipper([...tinyPretrain(corpus, 30, [], 'tfjs'), '--name', 'x'], dir);
  assert.equal(first.code, 0, first.stderr);
  const second = runZipper([...tinyPretrain(corpus, 60, [], 'ort'), '--name', 'x', '--resume'], dir);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /resuming from step 30/);
  const dev = readFileSync(join(dir, 'runs', 'x', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.kind === 'dev');
  const at = (s: number) => dev.find((m) => m.step === s)!.dev_loss;
  assert.ok(at(60) < at(30), `dev loss ${at(30)} at step 30 (tfjs) -> ${at(60)} at step 60 (ort)`);
});
