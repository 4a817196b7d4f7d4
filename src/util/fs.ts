// File helpers shared by every stage: atomic writes (a crash never leaves a half-written config,
// checkpoint index or results table), JSON reads with errors that name the file, JSONL appends.
//
// `fs` is used through its default export (fs.promises.rename, fs.renameSync, ...) rather than
// named imports so tests can inject failures with node:test's mock.method.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

function tempPathFor(target: string): string {
  return `${target}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
}

// Directory fsync makes the rename itself durable. Some platforms (Windows) cannot open or fsync a
// directory; there the rename has still happened, so durability is best effort.
const DIR_FSYNC_UNSUPPORTED = new Set(['EISDIR', 'EPERM', 'EINVAL', 'EBADF', 'EACCES']);

function isDirFsyncUnsupported(err: unknown): boolean {
  return DIR_FSYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException)?.code ?? '');
}

async function fsyncDir(dir: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(dir, 'r');
    await handle.sync();
  } catch (err) {
    if (!isDirFsyncUnsupported(err)) throw err;
  } finally {
    await handle?.close();
  }
}

function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (err) {
    if (!isDirFsyncUnsupported(err)) throw err;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Writes `data` to `target` so that readers see either the old file or the complete new one:
 * write a temp file in the same directory, fsync it, rename it over the target, fsync the directory.
 * On failure the temp file is removed and the error rethrown; the old content is untouched.
 */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPathFor(target);
  try {
    const handle = await fs.promises.open(tmp, 'wx');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(tmp, target);
    await fsyncDir(path.dirname(target));
  } catch (err) {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** Synchronous twin of writeFileAtomic, for exit handlers where nothing async runs. */
export function writeFileAtomicSync(target: string, data: string | Uint8Array): void {
  const tmp = tempPathFor(target);
  try {
    const fd = fs.openSync(tmp, 'wx');
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
    fsyncDirSync(path.dirname(target));
  } catch (err) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // The original error is the one worth reporting.
    }
    throw err;
  }
}

/** Pretty-printed JSON (2-space indent, trailing newline), written atomically. */
export async function writeJsonFile(target: string, value: unknown): Promise<void> {
  await writeFileAtomic(target, JSON.stringify(value, null, 2) + '\n');
}

/**
 * Reads and parses a JSON file. Errors read `<what> <path>: <reason>`, e.g.
 * `checkpoint state runs/a/state.json: file not found`. The result is not validated: parse it
 * with a zod schema when its shape matters.
 */
export function readJsonFile<T>(file: string, what: string): T {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new Error(`${what} ${file}: ${reason}`, { cause: err });
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`${what} ${file}: invalid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** Appends one line (a JSONL record) plus a newline. The line itself must not contain a newline. */
export async function appendLine(file: string, line: string): Promise<void> {
  if (line.includes('\n')) throw new Error(`appendLine ${file}: line contains a newline`);
  await fs.promises.appendFile(file, line + '\n');
}
