import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { claimResults } from '../../src/ablate/run-study.js';
import { buildGraph } from '../../src/ablate/stages.js';
import { expandCells, loadStudy } from '../../src/ablate/study.js';
import { writeTables } from '../../src/ablate/tables.js';
import type { TableResult } from '../../src/ablate/results.js';
import { studyFile } from './tiny-study.js';

const TWO_TABLES = `  - name: t1
    baseline: sd
    cells:
      sd: { architecture: single-decoder }
      zip: { architecture: zipper, freeze: text }
  - name: grid
    set: { freeze: text }
    axes:
      architecture: [zipper]
      data.fraction: [0.5, 1.0]
      zip.layers: [1, 2]`;

test('a study expands explicit cells and grids, and cells with the same resolved config share one run', () => {
  const study = loadStudy(studyFile(TWO_TABLES));
  const cells = expandCells(study);
  assert.deepEqual(cells.map((c) => c.label), ['sd', 'zip', 'architecture=zipper,data.fraction=0.5,zip.layers=1', 'architecture=zipper,data.fraction=0.5,zip.layers=2', 'architecture=zipper,data.fraction=1,zip.layers=1', 'architecture=zipper,data.fraction=1,zip.layers=2']);
  const g = buildGraph(study);
  // t1's zipper and the grid's (fraction 1, 2 layers: fuse.yaml's defaults) are one fine-tuning run.
  const zip = g.cells.find((c) => c.label === 'zip')!;
  const same = g.cells.find((c) => c.label === 'architecture=zipper,data.fraction=1,zip.layers=2')!;
  assert.equal(zip.fuse.id, same.fuse.id);
  assert.equal(new Set(g.cells.map((c) => c.fuse.id)).size, 5);
  // Shared stages once; cells depend on both towers, the corpus and the tokens.
  assert.equal(g.stages.filter((s) => s.kind === 'text_tower').length, 1);
  assert.deepEqual(new Set(zip.fuse.deps), new Set(g.stages.filter((s) => ['text_tower', 'speech_tower', 'corpus', 'tokens'].includes(s.kind)).map((s) => s.id)));
  // The command carries the cell's values and the upstream folders.
  assert.ok(zip.fuse.args.includes('freeze=text') && zip.fuse.args.some((a) => a.startsWith('text_tower=') && a.includes('text-')));
  assert.ok(zip.asr!.args.includes('--limit') && zip.asr!.deps.includes(zip.fuse.id));
});

test('stage hashes depend on the inputs, not on where the cache lives', () => {
  const a = buildGraph(loadStudy(studyFile(TWO_TABLES)));
  const b = buildGraph(loadStudy(studyFile(TWO_TABLES, 'cache: elsewhere/cache')));
  assert.deepEqual(a.stages.map((s) => s.id), b.stages.map((s) => s.id));
  assert.notEqual(a.stages[0]!.dir, b.stages[0]!.dir);
  // A changed fine-tuning budget changes every cell's id but no shared stage's.
  const c = buildGraph(loadStudy(studyFile(TWO_TABLES).replace(/$/, ''), ['fuse.set=[train.steps=8]']));
  const shared = (g: typeof a) => g.stages.filter((s) => !['fuse', 'eval_asr', 'eval_tts'].includes(s.kind)).map((s) => s.id);
  assert.deepEqual(shared(c), shared(a));
  assert.equal(c.cells.filter((x) => a.cells.some((y) => y.fuse.id === x.fuse.id)).length, 0);
});

test('bad studies fail before anything runs, naming the file, the table, the cell and the key', () => {
  const unknown = studyFile(`  - name: t
    cells:
      bad: { zip.layerz: 2 }`);
  assert.throws(() => buildGraph(loadStudy(unknown)), (e: Error) => e.message.includes(unknown) && /table t, cell bad/.test(e.message) && /zip\.layerz/.test(e.message));
  const wrongType = studyFile(`  - name: t
    axes:
      data.fraction: [ten]`);
  assert.throws(() => buildGraph(loadStudy(wrongType)), (e: Error) => /data\.fraction/.test(e.message) && /cell data\.fraction=ten/.test(e.message));
  assert.throws(() => loadStudy(studyFile('  []')), /at least one table/);
  assert.throws(() => expandCells(loadStudy(studyFile('  - name: t'))), /table t has no cells/);
  assert.throws(() => expandCells(loadStudy(studyFile(`  - name: t
    baseline: nope
    cells: { a: { freeze: text } }`))), /baseline nope is not one of its cells/);
  assert.throws(() => loadStudy(studyFile(`  - name: t
    cells: { a: { freeze: text } }`).replace('s1.yaml', 'missing.yaml')), /no such study file/);
  const tts = studyFile('  - name: t\n    cells: { a: { freeze: text } }').replace(/s1\.yaml$/, 's1.yaml');
  writeFileSync(tts, readFileSync(tts, 'utf8').replace('eval:\n', 'eval:\n  tts: { split: test-clean }\n'));
  assert.throws(() => loadStudy(tts), /eval\.tts needs a judge/);
});

test('a results folder written by another study is refused', () => {
  const study = loadStudy(studyFile(TWO_TABLES));
  mkdirSync(study.results, { recursive: true });
  claimResults(study);
  writeFileSync(join(study.results, 'study.json'), JSON.stringify({ name: 'another' }));
  assert.throws(() => claimResults(study), /holds the results of study "another", not "s1"/);
});

test('a partial table never replaces a complete one', async () => {
  const study = loadStudy(studyFile(TWO_TABLES));
  mkdirSync(study.results, { recursive: true });
  const table = (status: 'done' | 'failed'): TableResult[] => [
    { name: 't1', title: '', baseline: 'sd', cells: [{ table: 't1', label: 'sd', values: { architecture: 'single-decoder' }, run: 'r', status, columns: { 'wer.test-clean': 95.5 }, p: {} }] },
  ];
  const rec = { study: 's1', command: 'zipper ablate s1.yaml', date: 'today', environment: {} };
  const full = await writeTables(study, table('done'), rec);
  assert.equal(full.complete, true);
  assert.match(readFileSync(join(study.results, 'results.md'), 'utf8'), /95\.5/);
  const part = await writeTables(study, table('failed'), rec);
  assert.equal(part.complete, false);
  assert.ok(part.files[0]!.endsWith('results.partial.md'));
  assert.match(readFileSync(join(study.results, 'results.md'), 'utf8'), /\| 95\.5 \|/, 'the complete table is untouched');
  assert.match(readFileSync(join(study.results, 'results.partial.md'), 'utf8'), /PARTIAL[\s\S]*Missing cells:\n- sd: failed/);
  // Complete again: the partial files go.
  await writeTables(study, table('done'), rec);
  assert.ok(!existsSync(join(study.results, 'results.partial.md')));
});
