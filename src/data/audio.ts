// Audio files for the speech side: FLAC (LibriSpeech) and WAV (LibriTTS, units-to-wav) in and out,
// and resampling (LibriTTS is 24 kHz, the towers' features 16 kHz).
//
// FLAC goes through libflacjs's asm.js build (libFLAC 1.3.4, the reference codec; its wasm build
// fails in Node 20) in both directions. It needs one asynchronous start (about 0.1 s), done here with
// a top-level await, after which every call is synchronous: readAudio() can return samples rather
// than a promise. Measured here on flite speech: decoding ~1,400x real time, the same as
// @wasm-audio-decoders/flac (whose API is async per file); encoding ~700x.
//
// Samples are Float32Array in [-1, 1], mono: multi-channel files are averaged.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import type libFactory from 'libflacjs';
import { writeFileAtomicSync } from '../util/fs.js';

export interface Audio {
  samples: Float32Array;
  sampleRate: number;
}

/** What a header says, without decoding: enough for a manifest's duration. */
export interface AudioInfo {
  sampleRate: number;
  /** Samples per channel; 0 where a FLAC header leaves the length unknown. */
  frames: number;
  channels: number;
}

/** A file that is not readable audio; `file` is its path. */
export class AudioError extends Error {
  override name = 'AudioError';
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

type Flac = ReturnType<typeof libFactory>;

const flac: Flac = createRequire(import.meta.url)('libflacjs')('asmjs');
if (!flac.isReady()) await new Promise<void>((resolve) => flac.on('ready', () => resolve()));

/** Decodes a .flac or .wav file (by its first bytes, not its name). Throws AudioError. */
export function readAudio(path: string): Audio {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new AudioError(path, code === 'ENOENT' ? 'file not found' : (err as Error).message);
  }
  if (isFlac(bytes)) return decodeFlac(bytes, path);
  if (isWav(bytes)) return decodeWav(bytes, path);
  throw new AudioError(path, bytes.length < 12 ? `not an audio file (${bytes.length} bytes)` : 'not a FLAC or WAV file (no fLaC or RIFF/WAVE header)');
}

/** readAudio, resampled to `sampleRate` when the file has another rate. */
export function readAudioAt(path: string, sampleRate: number): Audio {
  const a = readAudio(path);
  return a.sampleRate === sampleRate ? a : { samples: resample(a.samples, a.sampleRate, sampleRate), sampleRate };
}

/** Rate and length from the header alone (the first 64 KiB of the file). Throws AudioError. */
export function audioInfo(path: string): AudioInfo {
  let head: Uint8Array;
  try {
    const fd = openSync(path, 'r');
    try {
      const buf = Buffer.alloc(65536);
      head = buf.subarray(0, readSync(fd, buf, 0, buf.length, 0));
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new AudioError(path, code === 'ENOENT' ? 'file not found' : (err as Error).message);
  }
  if (isFlac(head)) return flacStreamInfo(head, path);
  if (isWav(head)) {
    const w = wavLayout(head, path, false);
    return { sampleRate: w.sampleRate, frames: Math.floor(w.dataBytes / w.blockAlign), channels: w.channels };
  }
  throw new AudioError(path, 'not a FLAC or WAV file (no fLaC or RIFF/WAVE header)');
}

/** Writes 16-bit PCM mono WAV, atomically. */
export function writeWav(path: string, samples: Float32Array, sampleRate: number): void {
  writeFileAtomicSync(path, encodeWav(samples, sampleRate));
}

/** Writes 16-bit mono FLAC, atomically. */
export function writeFlac(path: string, samples: Float32Array, sampleRate: number): void {
  writeFileAtomicSync(path, encodeFlac(samples, sampleRate));
}

/** [-1, 1] floats to int16 with rounding and clipping. */
export function toInt16(samples: Float32Array): Int16Array {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(samples[i]! * 32768)));
  return out;
}

export function fromInt16(pcm: Int16Array): Float32Array {
  const out = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i]! / 32768;
  return out;
}

export function encodeWav(samples: Float32Array, sampleRate: number): Uint8Array {
  const pcm = toInt16(samples);
  const out = new Uint8Array(44 + pcm.byteLength);
  const v = new DataView(out.buffer);
  const ascii = (at: number, s: string) => [...s].forEach((c, i) => v.setUint8(at + i, c.charCodeAt(0)));
  ascii(0, 'RIFF');
  v.setUint32(4, 36 + pcm.byteLength, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true); // PCM
  v.setUint16(22, 1, true); // mono
  v.setUint32(24, sampleRate, true);
  v.setUint32(28, sampleRate * 2, true);
  v.setUint16(32, 2, true);
  v.setUint16(34, 16, true);
  ascii(36, 'data');
  v.setUint32(40, pcm.byteLength, true);
  out.set(new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength), 44);
  return out;
}

// Level 2 ("flac -2"): on flite speech with dither it compresses as well as the default 5 (the
// noise floor sets the size) and encodes 1.7x faster (~700x real time).
const FLAC_LEVEL = 2;

export function encodeFlac(samples: Float32Array, sampleRate: number): Uint8Array {
  const pcm = Int32Array.from(toInt16(samples));
  const enc = flac.create_libflac_encoder(sampleRate, 1, 16, FLAC_LEVEL, pcm.length, false);
  if (!enc) throw new Error(`FLAC encoder: cannot create one for ${sampleRate} Hz`);
  const chunks: Uint8Array[] = [];
  try {
    const status = flac.init_encoder_stream(enc, (data, bytes) => {
      chunks.push(data.slice(0, bytes));
    });
    if (status !== 0) throw new Error(`FLAC encoder: init status ${status}`);
    if (pcm.length > 0 && !flac.FLAC__stream_encoder_process_interleaved(enc, pcm, pcm.length)) {
      throw new Error(`FLAC encoder: state ${flac.FLAC__stream_encoder_get_state(enc)}`);
    }
    flac.FLAC__stream_encoder_finish(enc);
  } finally {
    flac.FLAC__stream_encoder_delete(enc);
  }
  return Buffer.concat(chunks);
}

// ---------------------------------------------------------------------------------------------
// FLAC

function isFlac(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x66 && b[1] === 0x4c && b[2] === 0x61 && b[3] === 0x43; // fLaC
}

/** The STREAMINFO block, which the format puts first. */
function flacStreamInfo(b: Uint8Array, path: string): AudioInfo {
  if (b.length < 8 + 34 || (b[4]! & 0x7f) !== 0) throw new AudioError(path, 'truncated or corrupt FLAC: no STREAMINFO block');
  const s = 8; // 4 bytes marker + 4 bytes block header
  const sampleRate = (b[s + 10]! << 12) | (b[s + 11]! << 4) | (b[s + 12]! >> 4);
  const channels = ((b[s + 12]! >> 1) & 0x7) + 1;
  const frames = (b[s + 13]! & 0x0f) * 2 ** 32 + ((b[s + 14]! << 24) | (b[s + 15]! << 16) | (b[s + 16]! << 8) | b[s + 17]!) >>> 0;
  if (sampleRate === 0) throw new AudioError(path, 'corrupt FLAC: sample rate 0 in STREAMINFO');
  return { sampleRate, frames, channels };
}

const END_OF_STREAM = 4; // FLAC__STREAM_DECODER_END_OF_STREAM

function decodeFlac(bytes: Uint8Array, path: string): Audio {
  const info = flacStreamInfo(bytes, path);
  const dec = flac.create_libflac_decoder(false);
  const blocks: Float32Array[] = [];
  let error: string | undefined;
  let bits = 0;
  let offset = 0;
  try {
    flac.init_decoder_stream(
      dec,
      (n) => {
        const chunk = bytes.subarray(offset, Math.min(bytes.length, offset + n)) as Uint8Array<ArrayBuffer>;
        offset += chunk.length;
        return { buffer: chunk, readDataLength: chunk.length, error: false };
      },
      (channels, frame) => {
        bits = frame.bitsPerSample;
        if (bits !== 16) return;
        blocks.push(downmix(channels.map((c) => new Int16Array(c.buffer, c.byteOffset, c.byteLength >> 1))));
      },
      (_code, description) => {
        error ??= String(description);
      },
    );
    const ok = flac.FLAC__stream_decoder_process_until_end_of_stream(dec);
    const state = flac.FLAC__stream_decoder_get_state(dec);
    if (!ok && !error && state !== END_OF_STREAM) error = `decoder state ${state}`;
    flac.FLAC__stream_decoder_finish(dec);
  } finally {
    flac.FLAC__stream_decoder_delete(dec);
  }
  if (bits !== 0 && bits !== 16) throw new AudioError(path, `unsupported FLAC: ${bits} bits per sample (only 16)`);
  if (error) throw new AudioError(path, `corrupt FLAC: ${error.replace('FLAC__STREAM_DECODER_ERROR_STATUS_', '').toLowerCase()}`);
  const samples = concat(blocks);
  // libFLAC stops quietly at the end of the bytes: a cut file is only seen by its length.
  if (info.frames > 0 && samples.length !== info.frames) {
    throw new AudioError(path, `truncated FLAC: header says ${info.frames} samples, decoded ${samples.length}`);
  }
  return { samples, sampleRate: info.sampleRate };
}

function downmix(channels: Int16Array[]): Float32Array {
  const n = channels[0]?.length ?? 0;
  const out = new Float32Array(n);
  const scale = 1 / (32768 * channels.length);
  for (const c of channels) for (let i = 0; i < n; i++) out[i]! += c[i]! * scale;
  return out;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// WAV: a RIFF parser for 16-bit PCM and 32-bit float, any channel count.

function isWav(b: Uint8Array): boolean {
  const tag = (at: number) => String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!);
  return b.length >= 12 && tag(0) === 'RIFF' && tag(8) === 'WAVE';
}

interface WavLayout {
  format: 'pcm16' | 'float32';
  sampleRate: number;
  channels: number;
  blockAlign: number;
  dataOffset: number;
  dataBytes: number;
}

/** Walks the chunks up to "data"; `whole` says the bytes are the entire file (checks the length). */
function wavLayout(b: Uint8Array, path: string, whole: boolean): WavLayout {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const tag = (at: number) => String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!);
  let fmt: Omit<WavLayout, 'dataOffset' | 'dataBytes'> | undefined;
  let at = 12;
  while (at + 8 <= b.length) {
    const id = tag(at);
    const size = v.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > b.length) throw new AudioError(path, 'corrupt WAV: short fmt chunk');
      let code = v.getUint16(body, true);
      if (code === 0xfffe && size >= 26 && body + 26 <= b.length) code = v.getUint16(body + 24, true); // WAVE_FORMAT_EXTENSIBLE
      const channels = v.getUint16(body + 2, true);
      const sampleRate = v.getUint32(body + 4, true);
      const blockAlign = v.getUint16(body + 12, true);
      const bits = v.getUint16(body + 14, true);
      const format = code === 1 && bits === 16 ? 'pcm16' : code === 3 && bits === 32 ? 'float32' : undefined;
      if (!format) throw new AudioError(path, `unsupported WAV: format ${code} with ${bits} bits (16-bit PCM or 32-bit float only)`);
      if (channels < 1 || sampleRate < 1 || blockAlign !== channels * (bits / 8)) {
        throw new AudioError(path, `corrupt WAV: ${channels} channels, ${sampleRate} Hz, block align ${blockAlign}`);
      }
      fmt = { format, sampleRate, channels, blockAlign };
    } else if (id === 'data') {
      if (!fmt) throw new AudioError(path, 'corrupt WAV: data chunk before fmt chunk');
      if (whole && body + size > b.length) {
        throw new AudioError(path, `truncated WAV: data chunk declares ${size} bytes, file holds ${b.length - body}`);
      }
      return { ...fmt, dataOffset: body, dataBytes: size };
    }
    at = body + size + (size & 1); // chunks are padded to even sizes
  }
  throw new AudioError(path, fmt ? 'truncated WAV: no data chunk' : 'truncated or corrupt WAV: no fmt chunk');
}

function decodeWav(b: Uint8Array, path: string): Audio {
  const w = wavLayout(b, path, true);
  const frames = Math.floor(w.dataBytes / w.blockAlign);
  const v = new DataView(b.buffer, b.byteOffset + w.dataOffset, frames * w.blockAlign);
  const out = new Float32Array(frames);
  const width = w.format === 'pcm16' ? 2 : 4;
  const scale = 1 / w.channels;
  for (let i = 0; i < frames; i++) {
    let sum = 0;
    for (let c = 0; c < w.channels; c++) {
      const at = i * w.blockAlign + c * width;
      sum += w.format === 'pcm16' ? v.getInt16(at, true) / 32768 : v.getFloat32(at, true);
    }
    out[i] = sum * scale;
  }
  return { samples: out, sampleRate: w.sampleRate };
}

// ---------------------------------------------------------------------------------------------
// Resampling: a polyphase windowed-sinc filter (Kaiser window, beta 8.6: about 80 dB of stopband
// rejection), cut off at 95% of the lower Nyquist frequency. The ratio is reduced to lowest terms
// L/M and the L phases of the filter are tabulated once, so 16 kHz <-> 24 kHz has 2 or 3 phases.

const ZERO_CROSSINGS = 16;
const KAISER_BETA = 8.6;
const ROLLOFF = 0.95;
const MAX_PHASES = 4096;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Zeroth-order modified Bessel function of the first kind (series). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  for (let k = 1; k < 50; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

const filterCache = new Map<string, { taps: Float32Array[]; half: number }>();

function polyphase(up: number, down: number): { taps: Float32Array[]; half: number } {
  const key = `${up}/${down}`;
  const cached = filterCache.get(key);
  if (cached) return cached;
  // Cut-off in cycles per input sample, and the filter's half-width in input samples.
  const cutoff = (ROLLOFF * Math.min(1, up / down)) / 2;
  const half = Math.ceil(ZERO_CROSSINGS / (2 * cutoff));
  const i0b = besselI0(KAISER_BETA);
  const taps: Float32Array[] = [];
  for (let p = 0; p < up; p++) {
    const frac = p / up; // output position minus the base input sample, in input samples
    const h = new Float32Array(2 * half);
    for (let k = 0; k < 2 * half; k++) {
      const t = k - half + 1 - frac; // distance from the output position to input sample base+k-half+1
      const x = t / half;
      const w = Math.abs(x) >= 1 ? 0 : besselI0(KAISER_BETA * Math.sqrt(1 - x * x)) / i0b;
      const arg = 2 * cutoff * t;
      h[k] = 2 * cutoff * (arg === 0 ? 1 : Math.sin(Math.PI * arg) / (Math.PI * arg)) * w;
    }
    taps.push(h);
  }
  const f = { taps, half };
  filterCache.set(key, f);
  return f;
}

/** Resamples from one integer rate to another; the output has round(n * to / from) samples. */
export function resample(samples: Float32Array, from: number, to: number): Float32Array {
  if (!(Number.isInteger(from) && Number.isInteger(to) && from > 0 && to > 0)) throw new Error(`resample: rates must be positive integers, got ${from} -> ${to}`);
  if (from === to) return samples.slice();
  const g = gcd(from, to);
  const up = to / g;
  const down = from / g;
  if (up > MAX_PHASES) throw new Error(`resample: ${from} -> ${to} Hz needs ${up} filter phases (at most ${MAX_PHASES}); round the rates`);
  const { taps, half } = polyphase(up, down);
  const n = samples.length;
  const out = new Float32Array(Math.round((n * to) / from));
  for (let j = 0; j < out.length; j++) {
    const num = j * down;
    const base = Math.floor(num / up);
    const h = taps[num - base * up]!;
    const start = base - half + 1;
    let sum = 0;
    if (start >= 0 && start + h.length <= n) {
      for (let k = 0; k < h.length; k++) sum += h[k]! * samples[start + k]!;
    } else {
      for (let k = 0; k < h.length; k++) {
        const i = start + k;
        if (i >= 0 && i < n) sum += h[k]! * samples[i]!;
      }
    }
    out[j] = sum;
  }
  return out;
}
