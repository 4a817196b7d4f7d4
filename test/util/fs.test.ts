import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appendLine, readJsonFile, writeFileAtomic, writeFileAtomicSync, writeJsonFile } from '../../src/util/fs.js';

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'zipper-fs-'));
}

test('writeFileAtomic replaces the file and leaves no temp files', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'a.json');
  await writeFileAtomic(file, 'old');
  await writeFileAtomic(file, new TextEncoder().encode('new'));
  assert.equal(fs.readFileSync(file, 'utf8'), 'new');
  writeFileAtomicSync(file, 'sync');
  assert.equal(fs.readFileSync(file, 'utf8'), 'sync');
  assert.deepEqual(fs.readdirSync(dir), ['a.json']);
});

test('a failed write keeps the old content and removes its temp file', async (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'state.json');
  await writeFileAtomic(file, 'old');

  const rename = t.mock.method(fs.promises, 'rename', async () => {
    throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
  });
  await assert.rejects(writeFileAtomic(file, 'new'), /disk full/);
  assert.equal(rename.mock.callCount(), 1);
  rename.mock.restore();

  const renameSync = t.mock.method(fs, 'renameSync', () => {
    throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
  });
  assert.throws(() => writeFileAtomicSync(file, 'new'), /disk full/);
  renameSync.mock.restore();

  assert.equal(fs.readFileSync(file, 'utf8'), 'old');
  assert.deepEqual(fs.readdirSync(dir), ['state.json']);
});

test('a write into a missing directory fails without leaving anything', async () => {
  const dir = tempDir();
  const gone = path.join(dir, 'gone');
  fs.mkdirSync(gone);
  fs.rmdirSync(gone);
  await assert.rejects(writeFileAtomic(path.join(gone, 'x'), 'data'), { code: 'ENOENT' });
  assert.throws(() => writeFileAtomicSync(path.join(gone, 'x'), 'data'), { code: 'ENOENT' });
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('writing over a directory fails and leaves the directory and no temp file', async () => {
  const dir = tempDir();
  const target = path.join(dir, 'sub');
  fs.mkdirSync(target);
  fs.writeFileSync(path.join(target, 'keep'), 'x');
  await assert.rejects(writeFileAtomic(target, 'data'));
  assert.deepEqual(fs.readdirSync(dir), ['sub']);
  assert.equal(fs.readFileSync(path.join(target, 'keep'), 'utf8'), 'x');
});

test('readJsonFile names the file and the problem', async () => {
  const dir = tempDir();
  const good = path.join(dir, 'good.json');
  await writeJsonFile(good, { a: [1, 2] });
  assert.deepEqual(readJsonFile<{ a: number[] }>(good, 'checkpoint info'), { a: [1, 2] });
  assert.throws(() => readJsonFile(path.join(dir, 'none.json'), 'checkpoint info'), {
    message: `checkpoint info ${path.join(dir, 'none.json')}: file not found`,
  });
  const bad = path.join(dir, 'bad.json');
  fs.writeFileSync(bad, '{"a": ');
  assert.throws(() => readJsonFile(bad, 'manifest'), (err: Error) => err.message.startsWith(`manifest ${bad}: invalid JSON`));
});

test('appendLine appends JSONL records', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'metrics.jsonl');
  await appendLine(file, JSON.stringify({ step: 1 }));
  await appendLine(file, JSON.stringify({ step: 2 }));
  assert.equal(fs.readFileSync(file, 'utf8'), '{"step":1}\n{"step":2}\n');
  await assert.rejects(appendLine(file, 'a\nb'), /newline/);
});
