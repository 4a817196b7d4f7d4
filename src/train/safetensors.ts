import { readFileSync } from 'node:fs';
import { numel } from '../model/params.js';

/**
 * The safetensors format (huggingface/safetensors): u64 little-endian header length, a JSON header
 * {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__: {string: string}}, then the raw
 * little-endian bytes. Written by hand because it is 8 bytes and a JSON object, and because reading
 * it must check every offset: a truncated or corrupt file is an error that names the file.
 */
export interface NamedArray {
  name: string;
  shape: number[];
  data: Float32Array;
}

export function encodeSafetensors(arrays: readonly NamedArray[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const a of arrays) {
    if (a.data.length !== numel(a.shape)) throw new Error(`tensor "${a.name}": ${a.data.length} values for shape [${a.shape}]`);
    header[a.name] = { dtype: 'F32', shape: a.shape, data_offsets: [offset, offset + a.data.byteLength] };
    offset += a.data.byteLength;
  }
  // Pad the header with spaces to a multiple of 8 so the data that follows is aligned.
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const head = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const a of arrays) {
    out.set(new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength), at);
    at += a.data.byteLength;
  }
  return out;
}

export interface Safetensors {
  tensors: Map<string, NamedArray>;
  metadata: Record<string, string>;
}

export function readSafetensors(file: string): Safetensors {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read checkpoint ${file}: ${(e as Error).message}`);
  }
  return decodeSafetensors(bytes, file);
}

export function decodeSafetensors(bytes: Uint8Array, file: string): Safetensors {
  const bad = (why: string) => new Error(`corrupt or truncated checkpoint ${file}: ${why}`);
  if (bytes.length < 8) throw bad(`${bytes.length} bytes, too short for a header`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n > bytes.length - 8) throw bad(`header of ${n} bytes but the file has ${bytes.length}`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8'));
  } catch (e) {
    throw bad(`header is not JSON (${(e as Error).message})`);
  }
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const { __metadata__: meta, ...entries } = header as Record<string, unknown>;
  const tensors = new Map<string, NamedArray>();
  let expected = 0;
  const sorted = Object.entries(entries as typeof header).sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  for (const [name, e] of sorted) {
    if (e.dtype !== 'F32') throw bad(`tensor "${name}" has dtype ${e.dtype}; zipper reads F32`);
    const [b, end] = e.data_offsets;
    if (b !== expected || end - b !== numel(e.shape) * 4) throw bad(`tensor "${name}" has offsets [${b}, ${end}] for shape [${e.shape}]`);
    if (end > dataLen) throw bad(`tensor "${name}" ends at byte ${end} but only ${dataLen} data bytes are present`);
    expected = end;
    // Copy into a fresh buffer: 4-byte aligned whatever the file offset, and not a view of a
    // Node Buffer's shared pool (Buffer#slice does not copy).
    const copy = new Uint8Array(end - b);
    copy.set(bytes.subarray(dataStart + b, dataStart + end));
    const data = new Float32Array(copy.buffer);
    tensors.set(name, { name, shape: e.shape, data });
  }
  if (expected !== dataLen) throw bad(`${dataLen - expected} trailing bytes after the last tensor`);
  return { tensors, metadata: (meta as Record<string, string>) ?? {} };
}
