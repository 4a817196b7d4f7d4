/**
 * The SLURM executor against a real single-node SLURM (scripts/slurm-local.sh: slurmctld, slurmd and
 * munge as background processes, config under a temporary folder), on a tiny grid of tiny towers.
 * Starting the daemons needs root and Debian's slurm-wlm and munge; without them these tests are
 * skipped, or fail when ZIPPER_REQUIRE_SLURM=1 (CI). The tests run in order and share the cache, so
 * later ones find the shared stages built.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../src/cli/common.js';
import type { StudyStatus } from '../../src/ablate/status.js';
import type { Submission } from '../../src/ablate/slurm.js';
import { runZipper, ZIPPER } from '../cli/run-cli.js';
import { TINY_FUSE, tinyStudy, writeBrown } from './tiny-study.js';

const REQUIRED = process.env.ZIPPER_REQUIRE_SLURM === '1';
const SCRIPT = join(projectRoot(), 'scripts', 'slurm-local.sh');
const CELLS = ['      sd: { architecture: single-decoder }', '      zip: { architecture: zipper, freeze: text }', '      zip-speech: { architecture: zipper, freeze: speech }', '      zip-half: { architecture: zipper, freeze: text, data.fraction: 0.5 }'].join('\n');
const BAD = '\n      bad: { zip.layers: 3 }';

let dir = '';
let cluster: string | undefined;
let unavailable: string | undefined;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'zipper-slurm-'));
  writeBrown(dir);
  if (process.getuid?.() !== 0) unavailable = 'starting slurmd needs root';
  else if (spawnSync('slurmctld', ['-V']).error) unavailable = 'no slurmctld on the PATH (apt-get install -y --no-install-recommends slurm-wlm munge)';
  else {
    const r = spawnSync('bash', [SCRIPT, 'start', join(dir, 'cluster')], { encoding: 'utf8' });
    if (r.status !== 0) unavailable = `scripts/slurm-local.sh start failed: ${r.stderr.trim()}`;
    else {
      cluster = join(dir, 'cluster');
      // Every SLURM client the tests and the toolkit start reads this cluster's config.
      process.env.SLURM_CONF = join(cluster, 'slurm.conf');
    }
  }
});

after(() => {
  if (cluster) spawnSync('bash', [SCRIPT, 'stop', cluster], { stdio: 'ignore' });
});

function needSlurm(t: TestContext): boolean {
  if (!unavailable) return true;
  assert.ok(!REQUIRED, `ZIPPER_REQUIRE_SLURM=1 but ${unavailable}`);
  t.skip(unavailable);
  return false;
}

const read = <T>(f: string): T => JSON.parse(readFileSync(f, 'utf8')) as T;
const status = (study: string): StudyStatus => {
  const r = runZipper(['ablate', 'status', study, '--json'], dir);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as StudyStatus;
};
const cellsWithoutRuns = (f: string) => read<{ tables: { cells: Record<string, unknown>[] }[] }>(f).tables.map((t) => t.cells.map(({ run: _run, ...c }) => c));
/** How many times a stage was started: its log has a "# zipper ..." command line per launch. */
const launches = (log: string) => readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('# zipper ')).length;
const ourJobs = () => spawnSync('squeue', ['-h', '-o', '%i'], { encoding: 'utf8' }).stdout.trim();

async function until(what: string, seconds: number, ok: () => boolean): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > seconds * 1000) assert.fail(`timed out after ${seconds} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

test('SLURM: jobs mirror the stage graph, every stage keeps its record, and the table equals the local executor\'s', (t) => {
  if (!needSlurm(t)) return;
  writeFileSync(join(dir, 'grid.yaml'), tinyStudy(dir, CELLS, { name: 'grid', cache: 'cache-slurm' }));
  const r = runZipper(['ablate', 'grid.yaml', '--executor', 'slurm', '--wait'], dir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /## tiny table/);

  // Shared stages a job each, the cells one array waiting for them all, the tables after the array.
  const sub = read<Submission>(join(dir, 'grid', 'slurm', 'submission.json'));
  assert.deepEqual(sub.jobs.map((j) => j.key.replace(/-\w+$/, '')), ['corpus', 'tokens', 'text', 'speech', 'judge', 'cells', 'tables']);
  const job = (k: string) => sub.jobs.find((j) => j.key.startsWith(k))!;
  assert.equal(job('tokens').dependency, `afterok:${job('corpus').job}`);
  const cells = job('cells');
  assert.ok(cells.array);
  assert.deepEqual(new Set(cells.dependency!.replace('afterok:', '').split(':')), new Set(['corpus', 'tokens', 'text', 'speech', 'judge'].map((k) => job(k).job)));
  assert.equal(job('tables').dependency, `afterany:${cells.job}`);
  assert.equal(cells.tasks.length, 4);
  cells.tasks.forEach((task, i) => {
    assert.deepEqual(task.map((id) => id.split('-')[0]), ['fuse', 'asr', 'tts']);
    // A cell's records are in its own run folder, each naming the array task that ran it.
    for (const id of task) {
      const rec = read<{ state: string; executor: string; job: string; exit_code: number }>(join(dir, 'cache-slurm', task[0]!, 'status', `${id}.json`));
      assert.deepEqual([rec.state, rec.executor, rec.job, rec.exit_code], ['done', 'slurm', `${cells.job}_${i}`, 0]);
    }
  });
  // The tables job names the user's command, not its own.
  const json = read<{ complete: boolean; command: string }>(join(dir, 'grid', 'results.json'));
  assert.equal(json.complete, true);
  assert.match(json.command, /^zipper ablate grid\.yaml --executor slurm --wait$/);

  // The same study on this machine, from nothing: the same table, figure for figure.
  writeFileSync(join(dir, 'grid-local.yaml'), tinyStudy(dir, CELLS, { name: 'grid-local', cache: 'cache-local' }));
  const l = runZipper(['ablate', 'grid-local.yaml'], dir);
  assert.equal(l.code, 0, l.stderr);
  assert.deepEqual(cellsWithoutRuns(join(dir, 'grid', 'results.json')), cellsWithoutRuns(join(dir, 'grid-local', 'results.json')));
  assert.equal(status('grid.yaml').cells.filter((c) => c.state === 'done').length, 4);
});

test('SLURM: a failing cell or shared stage is reported with its log, the tables job still runs, and the complete table stays', (t) => {
  if (!needSlurm(t)) return;
  const complete = readFileSync(join(dir, 'grid', 'results.md'), 'utf8');
  writeFileSync(join(dir, 'grid.yaml'), tinyStudy(dir, CELLS + BAD, { name: 'grid', cache: 'cache-slurm' }));
  const r = runZipper(['ablate', 'grid.yaml', '--executor', 'slurm', '--wait'], dir);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /the study is incomplete \(t\/bad: failed\)/);
  // Only the new cell was submitted; the tables job ended (the wait returned) and wrote a partial table.
  const sub = read<Submission>(join(dir, 'grid', 'slurm', 'submission.json'));
  assert.deepEqual(sub.jobs.map((j) => [j.key, j.tasks.length]), [['cells', 1], ['tables', 0]]);
  assert.equal(ourJobs(), '');
  const bad = status('grid.yaml').cells.find((c) => c.cell === 'bad')!;
  assert.equal(bad.state, 'failed');
  assert.match(bad.stage!.detail!, /exit 1: .*zip\.layers 3 is not in 1\.\.2/);
  assert.match(readFileSync(bad.stage!.log!, 'utf8'), /zip\.layers 3 is not in 1\.\.2/);
  assert.equal(readFileSync(join(dir, 'grid', 'results.md'), 'utf8'), complete);
  assert.match(readFileSync(join(dir, 'grid', 'results.partial.md'), 'utf8'), /- bad: failed \(fuse-\w+ failed \(log: .*fuse-\w+\.log\)\)/);
  // The human-readable status says the same.
  assert.match(runZipper(['ablate', 'status', 'grid.yaml'], dir).stdout, /t\/bad +failed +fuse-\w+ job \d+_0 +exit 1: zipper: zip\.layers 3/);

  // A shared stage that fails (the text tower's corpus is missing): SLURM cancels what waits for it,
  // and the tables job still runs and names the cause for every cell.
  writeFileSync(join(dir, 'broken.yaml'), tinyStudy(dir, CELLS, { name: 'broken', cache: 'cache-slurm' }).replace(join(dir, 'brown.txt'), join(dir, 'missing.txt')));
  const b = runZipper(['ablate', 'broken.yaml', '--executor', 'slurm', '--wait'], dir);
  assert.equal(b.code, 1);
  assert.equal(ourJobs(), '');
  const bs = status('broken.yaml');
  const text = bs.shared.find((x) => x.stage.startsWith('text-'))!;
  assert.equal(text.state, 'failed');
  assert.match(text.detail!, /text source not found/);
  assert.deepEqual(bs.cells.map((x) => x.state), ['cancelled', 'cancelled', 'cancelled', 'cancelled']);
  const partial = readFileSync(join(dir, 'broken', 'results.md'), 'utf8');
  assert.match(partial, /PARTIAL/);
  assert.equal([...partial.matchAll(/: failed \(fuse-\w+ skipped: text-\w+ did not finish\)/g)].length, 4);
});

test('SLURM: a cancelled study resumes where it stopped and completes without redoing finished cells', async (t) => {
  if (!needSlurm(t)) return;
  // Longer cells, one at a time, so that one is done and the next is mid-training when we cancel.
  const fuse = [...TINY_FUSE.filter((s) => !/^train\.(steps|checkpoint_every|eval_every)=/.test(s)), 'train.steps=600', 'train.checkpoint_every=25', 'train.eval_every=300'];
  const cells = ['      sd: { architecture: single-decoder }', '      zip: { architecture: zipper, freeze: text }', '      zip-speech: { architecture: zipper, freeze: speech }'].join('\n');
  writeFileSync(join(dir, 'long.yaml'), tinyStudy(dir, cells, { name: 'long', cache: 'cache-slurm', fuse }));
  const sub = runZipper(['ablate', 'long.yaml', '--executor', 'slurm', '--max-running', '1'], dir);
  assert.equal(sub.code, 0, sub.stderr);
  assert.match(sub.stderr, /submitted \d+ stages as SLURM jobs \d+/);
  // While its jobs are queued the study cannot be submitted twice.
  const twice = runZipper(['ablate', 'long.yaml', '--executor', 'slurm'], dir);
  assert.equal(twice.code, 1);
  assert.match(twice.stderr, /still has jobs in the queue .*zipper ablate cancel long\.yaml/);
  // Nor run here at the same time: two runners would write the same stage folders.
  const local = runZipper(['ablate', 'long.yaml'], dir);
  assert.equal(local.code, 1);
  assert.match(local.stderr, /still has jobs in the queue/);

  let st = status('long.yaml');
  const ckpt = () => join(st.cells[1]!.run, 'checkpoints');
  await until('cell 1 done and cell 2 training past a checkpoint', 240, () => {
    st = status('long.yaml');
    return st.cells[0]!.state === 'done' && st.cells[1]!.state === 'running' && existsSync(ckpt()) && readdirSync(ckpt()).length > 0;
  });
  const c = runZipper(['ablate', 'cancel', 'long.yaml'], dir);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stderr, /cancelled SLURM jobs \d+/);
  await until('the queue to empty', 60, () => ourJobs() === '');
  st = status('long.yaml');
  assert.deepEqual(st.cells.map((x) => x.state), ['done', 'cancelled', 'cancelled']);
  assert.equal(st.tables, null);

  const again = runZipper(['ablate', 'long.yaml', '--executor', 'slurm', '--wait'], dir);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(status('long.yaml').cells.map((x) => x.state), ['done', 'done', 'done']);
  const resub = read<Submission>(join(dir, 'long', 'slurm', 'submission.json'));
  assert.deepEqual(resub.jobs.map((j) => [j.key, j.tasks.length]), [['cells', 2], ['tables', 0]]);
  const logs = join(dir, 'cache-slurm', 'logs');
  const fuseId = (i: number) => st.cells[i]!.run.split('/').pop()!;
  assert.equal(launches(join(logs, `${fuseId(0)}.log`)), 1, 'the finished cell ran once');
  assert.equal(launches(join(logs, `${fuseId(1)}.log`)), 2);
  assert.match(readFileSync(join(st.cells[1]!.run, 'log.jsonl'), 'utf8'), /resuming from step [1-9]/);
});

test('SLURM: bad requests stop before anything is submitted', (t) => {
  // No sbatch on the PATH: checked before anything else, cluster or not.
  writeFileSync(join(dir, 'nopath.yaml'), tinyStudy(dir, CELLS, { name: 'nopath', cache: 'cache-slurm' }));
  const empty = mkdtempSync(join(tmpdir(), 'zipper-nobin-'));
  const r = spawnSync(process.execPath, [ZIPPER, 'ablate', 'nopath.yaml', '--executor', 'slurm'], { cwd: dir, encoding: 'utf8', env: { ...process.env, PATH: empty } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no sbatch on the PATH/);
  if (!needSlurm(t)) return;
  const refused: [string[], RegExp][] = [
    [['--partition', 'gpu-h100'], /slurm\.partition gpu-h100: no such partition on this cluster \(partitions: debug\)/],
    [['--cpus-per-task', '64'], /slurm\.cpus_per_task 64: the largest node in partition debug has \d+ CPUs/],
    [['--mem', '64T'], /slurm\.mem 64T: the largest node in partition debug has \d+ MB/],
    [['--time', '1:xx'], /slurm\.time: time "1:xx": not a SLURM time/],
  ];
  for (const [flags, msg] of refused) {
    const x = runZipper(['ablate', 'nopath.yaml', '--executor', 'slurm', ...flags], dir);
    assert.equal(x.code, 1, flags.join(' '));
    assert.match(x.stderr, msg);
  }
  // A results folder that another study wrote (its study.json, as a run leaves it).
  mkdirSync(join(dir, 'taken'), { recursive: true });
  writeFileSync(join(dir, 'taken', 'study.json'), JSON.stringify({ name: 'grid', file: join(dir, 'grid.yaml') }));
  writeFileSync(join(dir, 'other.yaml'), tinyStudy(dir, CELLS, { name: 'other', cache: 'cache-slurm', extra: 'results: taken' }));
  const o = runZipper(['ablate', 'other.yaml', '--executor', 'slurm'], dir);
  assert.equal(o.code, 1);
  assert.match(o.stderr, /holds the results of study "grid", not "other"/);
  assert.equal(ourJobs(), '', 'nothing was submitted');
  assert.ok(!existsSync(join(dir, 'nopath')), 'no results folder was made');
});
