// The SLURM executor's plan and checks, without a cluster (slurm.test.ts runs them against one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkRequest, planJobs, slurmMegabytes, slurmMinutes, type Partition } from '../../src/ablate/slurm.js';
import { buildGraph } from '../../src/ablate/stages.js';
import { loadStudy } from '../../src/ablate/study.js';
import { studyFile } from './tiny-study.js';

const GRID = `  - name: grid
    set: { freeze: text }
    axes:
      data.fraction: [0.5, 1.0]
      zip.layers: [1, 2]`;

test('SLURM times and memory sizes parse as sbatch reads them', () => {
  assert.equal(slurmMinutes('30'), 30);
  assert.equal(slurmMinutes('30:30'), 30.5);
  assert.equal(slurmMinutes('2:00:00'), 120);
  assert.equal(slurmMinutes('1-12'), 2160);
  assert.equal(slurmMinutes('1-00:30'), 1470);
  assert.equal(slurmMinutes('1-00:00:30'), 1440.5);
  assert.equal(slurmMinutes('infinite'), Infinity);
  assert.throws(() => slurmMinutes('2h'), /time "2h": not a SLURM time/);
  assert.equal(slurmMegabytes('4000'), 4000);
  assert.equal(slurmMegabytes('4G'), 4096);
  assert.equal(slurmMegabytes('1t'), 1024 * 1024);
});

test('a request no node of the partition could run is refused, naming the key', () => {
  const parts: Partition[] = [
    { name: 'cpu', isDefault: true, up: true, cpus: 8, memMb: 32000, maxMinutes: 60 },
    { name: 'gpu', isDefault: false, up: true, cpus: 32, memMb: 256000, maxMinutes: Infinity },
  ];
  const ok = { cpus_per_task: 4, extra_args: [] };
  assert.equal(checkRequest(ok, parts).name, 'cpu');
  assert.equal(checkRequest({ ...ok, partition: 'gpu', cpus_per_task: 32, mem: '200G', time: '3-00' }, parts).name, 'gpu');
  assert.throws(() => checkRequest({ ...ok, partition: 'tpu' }, parts), /slurm\.partition tpu: no such partition on this cluster \(partitions: cpu, gpu\)/);
  assert.throws(() => checkRequest({ ...ok, cpus_per_task: 9 }, parts), /slurm\.cpus_per_task 9: the largest node in partition cpu has 8 CPUs/);
  assert.throws(() => checkRequest({ ...ok, mem: '40G' }, parts), /slurm\.mem 40G: .* 32000 MB/);
  assert.throws(() => checkRequest({ ...ok, time: '2:00:00' }, parts), /slurm\.time 2:00:00: partition cpu allows at most 60 minutes/);
  assert.throws(() => checkRequest({ ...ok, time: 'two hours' }, parts), /slurm\.time: time "two hours": not a SLURM time/);
  assert.throws(() => checkRequest(ok, parts.map((p) => ({ ...p, isDefault: false }))), /no default partition/);
});

test('the plan: a job per shared stage, one array of cells waiting for them, the tables after the array', () => {
  const study = loadStudy(studyFile(GRID, 'slurm: { partition: cpu, cpus_per_task: 2, mem: 4G, time: "1:00:00", max_running: 2, extra_args: [--qos=short] }'));
  const g = buildGraph(study);
  const jobs = planJobs(study, g.stages, { command: 'zipper ablate s1.yaml --executor slurm', snapshot: '/snap/study.yaml' });
  assert.deepEqual(jobs.map((j) => j.key.split('-')[0]), ['corpus', 'tokens', 'text', 'speech', 'cells', 'tables']);
  const [corpus, tokens, text, speech, cells, tables] = jobs;
  assert.deepEqual(corpus!.after.keys, []);
  assert.deepEqual(tokens!.after, { kind: 'afterok', keys: [corpus!.key] });
  assert.deepEqual(speech!.after.keys, [tokens!.key]);
  assert.deepEqual(new Set(cells!.after.keys), new Set([corpus, tokens, text, speech].map((j) => j!.key)));
  assert.deepEqual(tables!.after, { kind: 'afterany', keys: ['cells'] });
  // Four cells, each its fine-tuning then its evaluation, in the order the study names them.
  assert.deepEqual(cells!.tasks, g.cells.map((c) => [c.fuse.id, c.asr!.id]));
  for (const line of ['#SBATCH --array=0-3%2', '#SBATCH --partition=cpu', '#SBATCH --cpus-per-task=2', '#SBATCH --mem=4G', '#SBATCH --time=1:00:00', '#SBATCH --qos=short', '#SBATCH --kill-on-invalid-dep=yes']) {
    assert.ok(cells!.scriptText.includes(line), line);
  }
  assert.match(cells!.scriptText, /ablate run-stages \/snap\/study\.yaml \$\{cells\[\$SLURM_ARRAY_TASK_ID\]\}/);
  assert.match(tables!.scriptText, /--tables-only --as-command 'zipper ablate s1\.yaml --executor slurm'/);
  assert.doesNotMatch(tables!.scriptText, /--mem/);
});

test('the plan leaves out what is done: finished shared stages and cells are not submitted again', () => {
  const study = loadStudy(studyFile(GRID));
  const g = buildGraph(study);
  // Mark the corpus and the tokens done (their markers), and one cell's fine-tuning and evaluation.
  mkdirSync(g.corpus.dir, { recursive: true });
  writeFileSync(join(g.corpus.dir, 'corpus.json'), '{}');
  mkdirSync(g.tokens.dir, { recursive: true });
  writeFileSync(join(g.tokens.dir, 'tokens.json'), '{}');
  const done = g.cells[0]!;
  mkdirSync(done.fuse.dir, { recursive: true });
  writeFileSync(join(done.fuse.dir, 'summary.json'), '{"interrupted": false}');
  // Its evaluation is not done: the cell goes again, but only for the evaluation.
  let jobs = planJobs(study, g.stages, { command: 'c', snapshot: 's' });
  assert.deepEqual(jobs.map((j) => j.key.split('-')[0]), ['text', 'speech', 'cells', 'tables']);
  assert.deepEqual(jobs[1]!.after.keys, [], 'the speech tower waits for nothing: its tokens are done');
  assert.deepEqual(jobs[2]!.tasks[0], [done.asr!.id]);
  mkdirSync(join(done.asr!.dir, 'test-clean'), { recursive: true });
  writeFileSync(join(done.asr!.dir, 'test-clean', 'summary.json'), '{}');
  jobs = planJobs(study, g.stages, { command: 'c', snapshot: 's' });
  assert.equal(jobs.find((j) => j.key === 'cells')!.tasks.length, 3);
  assert.ok(!jobs.find((j) => j.key === 'cells')!.tasks.flat().includes(done.fuse.id));
});
