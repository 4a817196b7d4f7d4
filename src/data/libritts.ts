// LibriTTS split folders: <split>/<speaker>/<chapter>/<spk>_<ch>_<par>_<sent>.wav at 24 kHz, each
// with a one-line .normalized.txt (and .original.txt) beside it, and a per-chapter .trans.tsv.
//
// The manifest's text is the .normalized.txt in LibriSpeech style (upper case, punctuation dropped,
// apostrophes kept), so a LibriTTS split and a LibriSpeech split give the same kind of manifest.
// Rates: the manifest keeps pointing at the 24 kHz files and does not resample them on disk; readers
// call readAudioAt(path, 16000) (src/data/audio.ts), which resamples on the fly when a file's rate
// differs. Durations are in seconds, so they do not depend on the rate.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { audioDuration, chapterDirs, type LoadOptions } from './librispeech.js';
import { BadInputError, BadInputLog, librispeechStyle, type LoadResult, type Utterance } from './manifest.js';

export const LIBRITTS_RATE = 24000;

/** Every utterance of one LibriTTS split folder, with absolute audio paths, sorted by id. */
export function loadLibriTTS(splitDir: string, opts: LoadOptions = {}): LoadResult {
  const log = new BadInputLog(opts.policy ?? 'stop');
  const split = opts.split ?? basename(resolve(splitDir));
  const o = { ...opts, sampleRate: opts.sampleRate ?? LIBRITTS_RATE };
  const utts: Utterance[] = [];
  for (const { speaker, chapter, dir } of chapterDirs(splitDir)) {
    const files = readdirSync(dir).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    const wavs = new Set(files.filter((f) => f.endsWith('.wav')).map((f) => f.slice(0, -'.wav'.length)));
    for (const f of files.filter((f) => f.endsWith('.normalized.txt'))) {
      const id = f.slice(0, -'.normalized.txt'.length);
      if (!wavs.has(id)) log.report(new BadInputError('id_without_audio', join(dir, f), `utterance ${id} has no audio file (${join(dir, `${id}.wav`)} not found)`));
    }
    for (const id of wavs) {
      const wav = join(dir, `${id}.wav`);
      const txt = join(dir, `${id}.normalized.txt`);
      if (!id.startsWith(`${speaker}_${chapter}_`)) {
        log.report(new BadInputError('line_without_id', wav, `file name is not an utterance id of chapter ${speaker}_${chapter} (expected ${speaker}_${chapter}_<par>_<sent>.wav)`));
        continue;
      }
      if (!existsSync(txt)) {
        log.report(new BadInputError('audio_without_transcript', wav, `no transcript: ${txt} not found`));
        continue;
      }
      const text = librispeechStyle(readFileSync(txt, 'utf8'));
      if (text === '') {
        log.report(new BadInputError('empty_transcript', `${txt}:1`, `utterance ${id} has no transcript text`));
        continue;
      }
      const duration = audioDuration(wav, o, log);
      if (duration === undefined) continue;
      utts.push({ id, audio: wav, duration, text, speaker, split });
    }
  }
  return log.result(utts, splitDir);
}
