import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { AudioError, audioInfo, encodeWav, readAudio, readAudioAt, resample, writeFlac, writeWav } from '../../src/data/audio.js';

const dir = mkdtempSync(join(tmpdir(), 'zipper-audio-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function sine(freq: number, rate: number, seconds: number, amp = 0.5): Float32Array {
  return Float32Array.from({ length: Math.round(rate * seconds) }, (_, i) => amp * Math.sin((2 * Math.PI * freq * i) / rate));
}

function maxDiff(a: Float32Array, b: Float32Array, from = 0, to = Math.min(a.length, b.length)): number {
  let m = 0;
  for (let i = from; i < to; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const tone = sine(440, 16000, 1.5);

describe('FLAC and WAV', () => {
  test('round-trip 16-bit audio to within int16 rounding, with headers to match', () => {
    for (const ext of ['flac', 'wav']) {
      const file = join(dir, `tone.${ext}`);
      (ext === 'flac' ? writeFlac : writeWav)(file, tone, 16000);
      const a = readAudio(file);
      assert.equal(a.sampleRate, 16000);
      assert.equal(a.samples.length, tone.length);
      assert.ok(maxDiff(a.samples, tone) <= 1 / 32768, ext);
      assert.deepEqual(audioInfo(file), { sampleRate: 16000, frames: tone.length, channels: 1 });
    }
  });

  test('reads float32 and stereo WAV, downmixed to mono', () => {
    const n = 800;
    const buf = Buffer.alloc(44 + n * 8);
    buf.write('RIFF', 0);
    buf.writeUInt32LE(36 + n * 8, 4);
    buf.write('WAVEfmt ', 8);
    buf.writeUInt32LE(16, 16);
    buf.writeUInt16LE(3, 20); // IEEE float
    buf.writeUInt16LE(2, 22);
    buf.writeUInt32LE(8000, 24);
    buf.writeUInt32LE(8000 * 8, 28);
    buf.writeUInt16LE(8, 32);
    buf.writeUInt16LE(32, 34);
    buf.write('data', 36);
    buf.writeUInt32LE(n * 8, 40);
    for (let i = 0; i < n; i++) {
      buf.writeFloatLE(0.5, 44 + 8 * i);
      buf.writeFloatLE(-0.25, 48 + 8 * i);
    }
    const file = join(dir, 'stereo.wav');
    writeFileSync(file, buf);
    const a = readAudio(file);
    assert.equal(a.sampleRate, 8000);
    assert.equal(a.samples.length, n);
    assert.ok(Math.abs(a.samples[17]! - 0.125) < 1e-7);
  });

  test('name the file and the problem for truncated, corrupt and foreign files', () => {
    const flac = readFileSync(join(dir, 'tone.flac'));
    const wav = readFileSync(join(dir, 'tone.wav'));
    const cases: [string, Uint8Array, RegExp][] = [
      ['cut.flac', flac.subarray(0, flac.length >> 1), /truncated FLAC: header says 24000 samples, decoded \d+/],
      ['head.flac', flac.subarray(0, 20), /truncated or corrupt FLAC: no STREAMINFO/],
      ['noise.flac', Uint8Array.from(flac, (b, i) => (i > 200 && i < 400 ? b ^ 0x5a : b)), /corrupt FLAC|truncated FLAC/],
      ['cut.wav', wav.subarray(0, 1000), /truncated WAV: data chunk declares 48000 bytes, file holds 956/],
      ['text.wav', Buffer.from('hello, this is not audio at all'), /not a FLAC or WAV file/],
      ['empty.flac', new Uint8Array(0), /not an audio file \(0 bytes\)/],
    ];
    for (const [name, bytes, message] of cases) {
      const file = join(dir, name);
      writeFileSync(file, bytes);
      assert.throws(
        () => readAudio(file),
        (err: unknown) => err instanceof AudioError && err.file === file && err.message.startsWith(`${file}: `) && message.test(err.message),
        name,
      );
    }
    assert.throws(() => readAudio(join(dir, 'missing.wav')), /missing\.wav: file not found/);
  });

  test('reject 8-bit PCM as unsupported rather than misread it', () => {
    const wav = Buffer.from(encodeWav(tone.subarray(0, 100), 16000));
    wav.writeUInt16LE(8, 34);
    wav.writeUInt16LE(1, 32);
    const file = join(dir, 'pcm8.wav');
    writeFileSync(file, wav);
    assert.throws(() => readAudio(file), /unsupported WAV: format 1 with 8 bits/);
  });
});

describe('resample', () => {
  test('24 kHz -> 16 kHz -> 24 kHz keeps a tone and the length', () => {
    const x = sine(440, 24000, 1);
    const down = resample(x, 24000, 16000);
    assert.equal(down.length, 16000);
    assert.ok(maxDiff(down, sine(440, 16000, 1), 100, 15900) < 1e-3);
    const up = resample(down, 16000, 24000);
    assert.equal(up.length, 24000);
    assert.ok(maxDiff(up, x, 100, 23900) < 1e-3);
  });

  test('removes what the lower rate cannot hold (no aliasing)', () => {
    const y = resample(sine(10000, 24000, 1), 24000, 16000); // 10 kHz is above 16 kHz's Nyquist
    let power = 0;
    for (let i = 500; i < y.length - 500; i++) power += y[i]! ** 2;
    const db = 10 * Math.log10(power / (y.length - 1000) / 0.125);
    assert.ok(db < -70, `alias at ${db.toFixed(1)} dB`);
  });

  test('readAudioAt resamples only when the rate differs', () => {
    const file = join(dir, 'tts.wav');
    writeWav(file, sine(300, 24000, 0.5), 24000);
    const a = readAudioAt(file, 16000);
    assert.equal(a.sampleRate, 16000);
    assert.equal(a.samples.length, 8000);
    assert.equal(readAudioAt(file, 24000).samples.length, 12000);
  });
});
