/**
 * `zipper doctor`: what this machine can run, and how fast it is likely to be. Every check is cheap
 * and nothing here throws: a failing check is reported, not raised.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { activeBackend, BACKEND_NAMES, initBackend, isBackendName, tf, type BackendName } from '../engine/backends.js';
import { probeWebGpu, sharedLibFound } from '../engine/webgpu.js';

export interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface DoctorBackend extends DoctorCheck {
  name: BackendName;
  /** webgpu: adapter name, driver description, adapter path (vulkan / opengles), software or not. */
  adapter?: string;
  description?: string;
  path?: string;
  software?: boolean;
  /** webgpu: the adapter paths that did not work, before the one that did. */
  tried?: string;
  /** wasm: SIMD available. */
  simd?: boolean;
  /** Milliseconds to initialise and run the sanity op. */
  ms: number;
}

export interface DoctorProvider {
  name: string;
  /** From listSupportedBackends(): shipped in the npm package (true) or needs extra libraries. */
  bundled?: boolean;
  /** working: a session was created and run; failed: creating/running threw; listed: only listed. */
  status: 'working' | 'failed' | 'listed';
  detail: string;
}

export interface DoctorReport {
  node: string;
  platform: string;
  cpu: { model: string; cores: number; flags: Record<string, boolean> };
  tfjs: { version: string; backends: DoctorBackend[] };
  onnxruntime: { version?: string; error?: string; providers: DoctorProvider[] };
  tools: (DoctorCheck & { version?: string })[];
}

const require = createRequire(import.meta.url);

/** CPU flags that matter for matmul speed (PyTorch/OpenBLAS, onnxruntime, wasm SIMD). */
const SPEED_FLAGS = ['sse4_2', 'avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512_bf16', 'amx_tile'];

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return (msg.split('\n').find((l) => l.trim()) ?? '').trim().slice(0, 240);
}

function cpuInfo(): DoctorReport['cpu'] {
  let model = os.cpus()[0]?.model ?? 'unknown';
  const flags: Record<string, boolean> = {};
  try {
    const text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const m = /^model name\s*:\s*(.+)$/m.exec(text);
    if (m?.[1]) model = m[1].trim();
    const f = /^(?:flags|Features)\s*:\s*(.+)$/m.exec(text);
    const have = new Set((f?.[1] ?? '').split(/\s+/));
    for (const name of SPEED_FLAGS) flags[name] = have.has(name);
  } catch {
    /* not Linux: model from os.cpus() only */
  }
  return { model, cores: os.availableParallelism?.() ?? os.cpus().length, flags };
}

function run(cmd: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    try {
      execFile(cmd, args, { timeout: timeoutMs, env: env ?? process.env, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
        const out = `${stdout ?? ''}${stderr ?? ''}`;
        resolve({ ok: !err, out: err && !out.trim() ? firstLine(err) : out });
      });
    } catch (e) {
      resolve({ ok: false, out: firstLine(e) });
    }
  });
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/* --- tfjs backends ----------------------------------------------------------------------------- */

async function checkBackends(): Promise<DoctorBackend[]> {
  const previous = activeBackend();
  const out: DoctorBackend[] = [];
  for (const name of BACKEND_NAMES) {
    const t0 = performance.now();
    const row: DoctorBackend = { name, ok: false, detail: '', ms: 0 };
    try {
      const c = await initBackend(name, { allowSoftwareGpu: true });
      row.ok = true;
      row.detail = c.attempts.at(-1)?.detail ?? 'ok';
      if (name === 'wasm') {
        try {
          row.simd = !!(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
        } catch {
          /* flag missing */
        }
      }
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      row.detail = msg.replace(/^tfjs backend '\w+' is not available: /, '').replace(/ \(tfjs is left on '\w+'\)$/, '');
    }
    if (name === 'webgpu') {
      const p = await probeWebGpu();
      if (p.ok) {
        row.adapter = p.adapter;
        row.description = p.description;
        row.path = p.path;
        row.software = p.software;
        const others = p.tried.filter((a) => !a.ok).map((a) => `${a.path}: ${a.detail}`);
        if (others.length) row.tried = others.join('; ');
        if (row.ok && p.software) row.detail += ': usable for testing the GPU code path, slower than wasm';
      }
    }
    row.ms = Math.round(performance.now() - t0);
    out.push(row);
  }
  // Leave tfjs where it was (or on cpu).
  try {
    await initBackend(previous && isBackendName(previous) ? previous : 'cpu');
  } catch {
    /* cpu fallback already set by initBackend */
  }
  return out;
}

/* --- onnxruntime ------------------------------------------------------------------------------- */

/** A hand-encoded ONNX model (IR 8, opset 17): y = x + x, x: float[2]. */
export function tinyOnnxModel(): Uint8Array {
  const varint = (n: number): number[] => {
    const o: number[] = [];
    while (n >= 0x80) {
      o.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    o.push(n);
    return o;
  };
  const key = (field: number, wire: number): number[] => varint((field << 3) | wire);
  const bytes = (field: number, b: number[]): number[] => [...key(field, 2), ...varint(b.length), ...b];
  const str = (field: number, s: string): number[] => bytes(field, [...Buffer.from(s, 'utf8')]);
  const int = (field: number, v: number): number[] => [...key(field, 0), ...varint(v)];
  // ValueInfoProto{name, type: TypeProto{tensor_type{elem_type FLOAT, shape{dim{dim_value 2}}}}}
  const valueInfo = (name: string): number[] =>
    [...str(1, name), ...bytes(2, bytes(1, [...int(1, 1), ...bytes(2, bytes(1, int(1, 2)))]))];
  const node = [...str(1, 'x'), ...str(1, 'x'), ...str(2, 'y'), ...str(3, 'add'), ...str(4, 'Add')];
  const graph = [...bytes(1, node), ...str(2, 'doctor'), ...bytes(11, valueInfo('x')), ...bytes(12, valueInfo('y'))];
  const model = [...int(1, 8), ...str(2, 'zipper-doctor'), ...bytes(7, graph), ...bytes(8, [...str(1, ''), ...int(2, 17)])];
  return Uint8Array.from(model);
}

type OrtModule = typeof import('onnxruntime-node');

async function checkOnnxruntime(): Promise<DoctorReport['onnxruntime']> {
  const res: DoctorReport['onnxruntime'] = { providers: [] };
  try {
    res.version = (require('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    /* version unknown */
  }
  let ort: OrtModule;
  try {
    const m = (await import('onnxruntime-node')) as OrtModule & { default?: OrtModule };
    ort = m.InferenceSession ? m : (m.default as OrtModule);
  } catch (e) {
    res.error = `cannot load onnxruntime-node: ${firstLine(e)}`;
    return res;
  }
  try {
    ort.env.logLevel = 'fatal';
  } catch {
    /* older API */
  }
  let listed: { name: string; bundled?: boolean }[] = [];
  try {
    const list = (ort as unknown as { listSupportedBackends?: () => { name: string; bundled?: boolean }[] }).listSupportedBackends;
    listed = typeof list === 'function' ? list() : [{ name: 'cpu', bundled: true }];
  } catch (e) {
    res.error = `listSupportedBackends threw: ${firstLine(e)}`;
    listed = [{ name: 'cpu', bundled: true }];
  }
  const model = tinyOnnxModel();
  for (const { name, bundled } of listed) {
    const row: DoctorProvider = { name, status: 'listed', detail: '' };
    if (bundled !== undefined) row.bundled = bundled;
    const t0 = performance.now();
    if (name === 'webgpu' && process.platform === 'linux' && !sharedLibFound('libvulkan.so.1')) {
      // ORT's own Dawn uses Vulkan on Linux; trying it only prints Dawn's warning.
      row.status = 'failed';
      row.detail = 'not tried: libvulkan.so.1 not found (its WebGPU provider needs Vulkan on Linux)';
      res.providers.push(row);
      continue;
    }
    try {
      const session = await ort.InferenceSession.create(model, {
        executionProviders: [name],
        intraOpNumThreads: 1,
        logSeverityLevel: 4,
      });
      try {
        const r = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2]), [2]) });
        const y = Array.from(r.y?.data as Float32Array ?? []);
        if (y[0] === 2 && y[1] === 4) {
          row.status = 'working';
          row.detail = `session created and run in ${Math.round(performance.now() - t0)} ms`;
        } else {
          row.status = 'failed';
          row.detail = `wrong result ${JSON.stringify(y)}`;
        }
      } finally {
        await session.release().catch(() => undefined);
      }
    } catch (e) {
      row.status = 'failed';
      row.detail = firstLine(e).replace(/^\/onnxruntime_src\/\S+ /, '').replace(/^.* was false\. /, '');
    }
    res.providers.push(row);
  }
  return res;
}

/* --- optional tools ---------------------------------------------------------------------------- */

const PY_SCRIPT = `
import importlib, json
out = {}
for m in ('torch', 'onnx', 'pocketsphinx'):
    try:
        mod = importlib.import_module(m)
        out[m] = {'ok': True, 'version': str(getattr(mod, '__version__', '?'))}
    except Exception as e:
        out[m] = {'ok': False, 'error': (type(e).__name__ + ': ' + str(e))[:200]}
print(json.dumps(out))
`;

async function checkPython(): Promise<DoctorReport['tools']> {
  const python = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : onPath('python3');
  const names = ['python3 torch', 'python3 onnx', 'python3 pocketsphinx'];
  if (!python) return names.map((name) => ({ name, ok: false, detail: 'python3 not found' }));
  const env = { ...process.env };
  // ENGINE.md: Debian's torch + OpenBLAS misbehaves with these set.
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const r = await run(python, ['-c', PY_SCRIPT], 30_000, env);
  let parsed: Record<string, { ok: boolean; version?: string; error?: string }> = {};
  try {
    parsed = JSON.parse(r.out.trim().split('\n').at(-1) ?? '{}');
  } catch {
    return names.map((name) => ({ name, ok: false, detail: `${python} failed: ${firstLine(r.out)}` }));
  }
  return ['torch', 'onnx', 'pocketsphinx'].map((m) => {
    const p = parsed[m];
    if (!p?.ok) return { name: `python3 ${m}`, ok: false, detail: p?.error ?? 'not checked' };
    let detail = `${python}: ${m} ${p.version}`;
    if (m === 'torch') {
      const openblas = ['/usr/lib/x86_64-linux-gnu/openblas-pthread', '/usr/lib/aarch64-linux-gnu/openblas-pthread'].some((d) => fs.existsSync(d));
      detail += openblas ? ' (OpenBLAS pthread present)' : ' (no libopenblas0-pthread: reference BLAS, ~15x slower)';
    }
    return { name: `python3 ${m}`, ok: true, version: p.version ?? '?', detail };
  });
}

const TOOLS: { name: string; bins: string[]; versionArgs: string[] }[] = [
  { name: 'pocketsphinx', bins: ['pocketsphinx', 'pocketsphinx_continuous'], versionArgs: [] },
  { name: 'sox', bins: ['sox'], versionArgs: ['--version'] },
  { name: 'flite', bins: ['flite'], versionArgs: ['--version'] },
  { name: 'espeak-ng', bins: ['espeak-ng'], versionArgs: ['--version'] },
  { name: 'sbatch', bins: ['sbatch'], versionArgs: ['--version'] },
];

async function checkTools(): Promise<DoctorReport['tools']> {
  return Promise.all(TOOLS.map(async (t) => {
    for (const bin of t.bins) {
      const p = onPath(bin);
      if (!p) continue;
      if (!t.versionArgs.length) return { name: t.name, ok: true, detail: p };
      const r = await run(p, t.versionArgs, 5_000);
      const line = firstLine(r.out);
      return { name: t.name, ok: true, detail: line ? `${p}: ${line}` : p, ...(line ? { version: line } : {}) };
    }
    return { name: t.name, ok: false, detail: 'not on PATH' };
  }));
}

/* ---------------------------------------------------------------------------------------------- */

/** Gather the report. Never throws. */
export async function doctorReport(): Promise<DoctorReport> {
  // The python probe (torch import: seconds) runs while the in-process checks do theirs.
  const python = checkPython().catch((e) => [{ name: 'python3', ok: false, detail: firstLine(e) }]);
  const tools = checkTools().catch((e) => [{ name: 'tools', ok: false, detail: firstLine(e) }]);
  let tfjsVersion = 'unknown';
  try {
    tfjsVersion = tf.version.tfjs ?? tf.version_core;
  } catch {
    /* keep unknown */
  }
  const backends = await checkBackends().catch((e) => [
    { name: 'cpu' as const, ok: false, detail: `backend checks failed: ${firstLine(e)}`, ms: 0 },
  ]);
  const onnxruntime = await checkOnnxruntime().catch((e) => ({ error: firstLine(e), providers: [] }));
  return {
    node: process.version,
    platform: `${process.platform} ${process.arch} (${os.release()})`,
    cpu: cpuInfo(),
    tfjs: { version: tfjsVersion, backends },
    onnxruntime,
    tools: [...(await python), ...(await tools)],
  };
}

/** Plain text, one check a line. */
export function formatDoctor(r: DoctorReport): string {
  const mark = (ok: boolean): string => (ok ? 'ok ' : '-- ');
  const lines: string[] = [];
  lines.push(`node        ${r.node} on ${r.platform}`);
  const flags = Object.entries(r.cpu.flags);
  const flagText = flags.length
    ? flags.filter(([, v]) => v).map(([k]) => k).join(' ') || 'none of ' + flags.map(([k]) => k).join(' ')
    : 'unknown';
  lines.push(`cpu         ${r.cpu.model}, ${r.cpu.cores} cores; flags: ${flagText}`);
  if (flags.length && !r.cpu.flags.avx2) lines.push('            no AVX2: expect slow CPU training');
  lines.push(`tfjs        ${r.tfjs.version}`);
  for (const b of r.tfjs.backends) {
    let extra = '';
    if (b.name === 'wasm' && b.simd !== undefined) extra = b.simd ? '' : ' (no SIMD: slow)';
    if (b.name === 'webgpu' && b.description) extra = ` [${b.description}]`;
    lines.push(`  ${mark(b.ok)}${b.name.padEnd(11)}${b.detail}${extra} (${b.ms} ms)`);
    if (b.tried && b.ok) lines.push(`${' '.repeat(16)}not used: ${b.tried}`);
  }
  lines.push(`onnxruntime ${r.onnxruntime.version ?? 'unknown'}${r.onnxruntime.error ? `: ${r.onnxruntime.error}` : ''}`);
  for (const p of r.onnxruntime.providers) {
    const bundled = p.bundled === false ? ' (not bundled)' : '';
    lines.push(`  ${mark(p.status === 'working')}${p.name.padEnd(11)}${p.status}${bundled}: ${p.detail}`);
  }
  lines.push('tools');
  for (const t of r.tools) lines.push(`  ${mark(t.ok)}${t.name.padEnd(21)}${t.detail}`);
  return lines.join('\n');
}
