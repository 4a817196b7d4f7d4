import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { normalizeTranscript } from '../../src/eval/normalize.js';
import { runZipper } from './run-cli.js';
import { tinyStudy, writeBrown } from '../ablate/tiny-study.js';

/**
 * `zipper ablate` end to end on the tiny corpus with tiny towers: shared stages once, three cells
 * (one fails at run time), the partial table naming the failure, a rerun that redoes nothing
 * finished, and a complete table once the failing cell is gone.
 */
let dir = '';
const study = (cells: string) => tinyStudy(dir, cells);
const GOOD = '      sd: { architecture: single-decoder }\n      zip: { architecture: zipper, freeze: text }';
const ablate = (extra: string[] = []) => runZipper(['ablate', 'tiny.yaml', ...extra], dir);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'zipper-ablate-'));
  writeBrown(dir);
});

/** Word errors of hyp against ref by a plain edit distance (independent of src/eval/wer.ts). */
function wordErrors(ref: string, hyp: string): number {
  const r = ref ? ref.split(' ') : [];
  const h = hyp ? hyp.split(' ') : [];
  let prev = Array.from({ length: h.length + 1 }, (_, j) => j);
  for (let i = 1; i <= r.length; i++) {
    const cur = [i];
    for (let j = 1; j <= h.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (r[i - 1] === h[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[h.length]!;
}

test('zipper ablate: a failing cell gives a partial table that names it; the others are scored and tested', () => {
  writeFileSync(join(dir, 'tiny.yaml'), study(GOOD + '\n      bad: { zip.layers: 3 }'));
  const r = ablate();
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /FAILED .*fuse-/);
  assert.match(r.stderr, /the study is incomplete/);
  const md = readFileSync(join(dir, 'tiny', 'results.md'), 'utf8');
  assert.match(md, /PARTIAL/);
  assert.match(md, /- bad: failed \(fuse-\w+ failed \(log: .*\.log\)\)/);
  const log = readFileSync(md.match(/log: (.*\.log)\)/)![1]!, 'utf8');
  assert.match(log, /zip\.layers 3 is not in 1\.\.2/);
  // The local executor keeps the same stage records as SLURM's jobs: status reads them.
  const st = JSON.parse(runZipper(['ablate', 'status', 'tiny.yaml', '--json'], dir).stdout) as { cells: { cell: string; state: string; stage?: { detail?: string } }[] };
  assert.deepEqual(st.cells.map((c) => [c.cell, c.state]), [['sd', 'done'], ['zip', 'done'], ['bad', 'failed']]);
  assert.match(st.cells[2]!.stage!.detail!, /exit 1: .*zip\.layers 3 is not in 1\.\.2/);
  const json = JSON.parse(readFileSync(join(dir, 'tiny', 'results.json'), 'utf8'));
  assert.equal(json.complete, false);
  assert.match(json.command, /^zipper ablate tiny\.yaml/);
  assert.ok(json.environment.git !== undefined || json.environment.node !== undefined);
  const cells = json.tables[0].cells as { label: string; status: string; run: string; columns: Record<string, number>; p: Record<string, number> }[];
  assert.deepEqual(cells.map((c) => [c.label, c.status]), [['sd', 'done'], ['zip', 'done'], ['bad', 'failed']]);
  for (const c of cells.slice(0, 2)) {
    for (const k of ['wer.test-clean', 'cer.test-clean', 'tts.wer_gold', 'tts.wer_target', 'dev_asr_loss', 'gap_asr']) assert.ok(Number.isFinite(c.columns[k]), `${c.label} ${k}`);
  }
  // The zipper is tested against the baseline on the same utterances.
  assert.ok(cells[1]!.p['wer.test-clean']! >= 0 && cells[1]!.p['wer.test-clean']! <= 1);
  assert.ok(json.tables[0].oracle.wer_gold >= 0);
  // The table's WER is the one in the cell's files, recomputed here from recogs.txt.
  const run = join(dir, 'tiny', cells[1]!.run);
  const evalDir = join(run, 'eval', readdirSync(join(run, 'eval')).find((d) => d.startsWith('asr-'))!, 'test-clean');
  const lines = readFileSync(join(evalDir, 'recogs.txt'), 'utf8').trim().split('\n');
  let errors = 0;
  let words = 0;
  for (let i = 0; i < lines.length; i += 2) {
    const ref = normalizeTranscript(lines[i]!.split('\tref=')[1]!);
    const hyp = normalizeTranscript(lines[i + 1]!.split('\thyp=')[1] ?? '');
    errors += wordErrors(ref, hyp);
    words += ref ? ref.split(' ').length : 0;
  }
  assert.equal(lines.length, 12);
  assert.ok(Math.abs(cells[1]!.columns['wer.test-clean']! - (100 * errors) / words) < 1e-9, `${cells[1]!.columns['wer.test-clean']} vs ${(100 * errors) / words}`);
  // Plots: the dev-loss curves of the table, as SVG.
  const svg = readFileSync(join(dir, 'tiny', 't-dev-asr-loss.svg'), 'utf8');
  assert.ok(svg.startsWith('<svg') && svg.includes('zip'));
});

test('zipper ablate: a rerun redoes only what did not finish; without the failing cell the table is complete', () => {
  const again = ablate();
  assert.equal(again.code, 1);
  const started = [...again.stderr.matchAll(/start +\w+ +(\S+)/g)].map((m) => m[1]!);
  assert.equal(started.length, 1, again.stderr);
  assert.match(started[0]!, /^fuse-/);
  const partial = readFileSync(join(dir, 'tiny', 'results.md'), 'utf8');
  writeFileSync(join(dir, 'tiny.yaml'), study(GOOD));
  const done = ablate();
  assert.equal(done.code, 0, done.stderr);
  assert.doesNotMatch(done.stderr, /start /, 'everything was cached');
  const md = readFileSync(join(dir, 'tiny', 'results.md'), 'utf8');
  assert.doesNotMatch(md, /PARTIAL/);
  assert.match(done.stdout, /## tiny table/);
  assert.match(md, /\| sd \(baseline\) \|/);
  assert.match(md, /oracle \(judge on gold units\)/);
  assert.notEqual(md, partial);
  // A failing run now would leave this complete table alone.
  writeFileSync(join(dir, 'tiny.yaml'), study(GOOD + '\n      bad: { zip.layers: 3 }'));
  assert.equal(ablate().code, 1);
  assert.equal(readFileSync(join(dir, 'tiny', 'results.md'), 'utf8'), md);
  assert.ok(existsSync(join(dir, 'tiny', 'results.partial.md')));
});

test('zipper ablate: bad studies stop before any stage starts', () => {
  writeFileSync(join(dir, 'typo.yaml'), study(GOOD + '\n      typo: { zip.layerz: 3 }').replace('name: tiny', 'name: typo'));
  const r = runZipper(['ablate', 'typo.yaml'], dir);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /typo\.yaml: table t, cell typo: .*zip\.layerz/s);
  assert.doesNotMatch(r.stderr, /start /);
  // Another study's results folder.
  writeFileSync(join(dir, 'other.yaml'), study(GOOD).replace('name: tiny', 'name: other') + 'results: tiny\n');
  const o = runZipper(['ablate', 'other.yaml'], dir);
  assert.equal(o.code, 1);
  assert.match(o.stderr, /holds the results of study "tiny", not "other"/);
});
