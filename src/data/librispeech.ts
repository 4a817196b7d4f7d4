// LibriSpeech split folders: <split>/<speaker>/<chapter>/<spk>-<ch>-<utt>.flac, 16 kHz, and one
// <spk>-<ch>.trans.txt per chapter whose lines are "<spk>-<ch>-<utt> TRANSCRIPT" (split at the first
// space). Works on the real corpus (train-clean-100 ... test-other) and on the built-in one.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { BadInputPolicy } from '../config/data-schema.js';
import { AudioError, audioInfo, readAudio } from './audio.js';
import { BadInputError, BadInputLog, type LoadResult, type Utterance } from './manifest.js';

export interface LoadOptions {
  /** `stop` (default) throws at the first bad file or line; `skip` leaves it out and counts it. */
  policy?: BadInputPolicy;
  /** Decode every file (finds truncated and corrupt audio); false reads headers only. Default true. */
  verify?: boolean;
  /** The rate every file must have (LibriSpeech 16000, LibriTTS 24000). */
  sampleRate?: number;
  /** The manifest's split name; default: the folder's name. */
  split?: string;
}

/** A built-in corpus is built under a marker file of this name, removed only once it is complete. */
export const INCOMPLETE_MARKER = 'INCOMPLETE';

/** Refuses a split folder that lies inside a corpus still being built (or whose build died). */
export function assertNotIncomplete(splitDir: string): void {
  let dir = resolve(splitDir);
  for (let up = 0; up < 3; up++) {
    if (existsSync(join(dir, INCOMPLETE_MARKER))) {
      throw new Error(`${splitDir}: inside an incomplete corpus (${join(dir, INCOMPLETE_MARKER)} exists): build it again`);
    }
    dir = dirname(dir);
  }
}

export interface ChapterDir {
  speaker: string;
  chapter: string;
  dir: string;
}

/** <split>/<speaker>/<chapter>/ folders (absolute) in numeric order; files and other entries are ignored. */
export function chapterDirs(splitDir: string): ChapterDir[] {
  if (!existsSync(splitDir)) throw new Error(`${splitDir}: split folder not found`);
  assertNotIncomplete(splitDir);
  const subdirs = (dir: string) =>
    readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort(numericOrder);
  const abs = resolve(splitDir);
  const speakers = subdirs(abs);
  if (speakers.length > 0 && speakers.every((s) => !/^\d+$/.test(s))) {
    throw new Error(`${splitDir}: holds ${speakers.slice(0, 3).join(', ')}, not speaker folders: point at one split, e.g. ${join(splitDir, speakers[0]!)}`);
  }
  return speakers.flatMap((speaker) => subdirs(join(abs, speaker)).map((chapter) => ({ speaker, chapter, dir: join(abs, speaker, chapter) })));
}

function numericOrder(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** Reads an audio file's duration under the options, reporting bad audio and wrong rates. */
export function audioDuration(file: string, opts: LoadOptions, log: BadInputLog): number | undefined {
  try {
    let rate: number;
    let frames: number;
    if (opts.verify ?? true) {
      const a = readAudio(file);
      rate = a.sampleRate;
      frames = a.samples.length;
    } else {
      const info = audioInfo(file);
      rate = info.sampleRate;
      frames = info.frames > 0 ? info.frames : readAudio(file).samples.length;
    }
    if (opts.sampleRate !== undefined && rate !== opts.sampleRate) {
      log.report(new BadInputError('wrong_sample_rate', file, `wrong sample rate ${rate} Hz (expected ${opts.sampleRate})`));
      return undefined;
    }
    if (frames === 0) {
      log.report(new BadInputError('bad_audio', file, 'no samples'));
      return undefined;
    }
    return frames / rate;
  } catch (err) {
    if (!(err instanceof AudioError)) throw err;
    log.report(new BadInputError('bad_audio', file, err.message.slice(file.length + 2)));
    return undefined;
  }
}

/** Every utterance of one LibriSpeech split folder, with absolute audio paths, sorted by id. */
export function loadLibriSpeech(splitDir: string, opts: LoadOptions = {}): LoadResult {
  const log = new BadInputLog(opts.policy ?? 'stop');
  const split = opts.split ?? basename(resolve(splitDir));
  const o = { ...opts, sampleRate: opts.sampleRate ?? 16000 };
  const utts: Utterance[] = [];
  for (const { speaker, chapter, dir } of chapterDirs(splitDir)) {
    const prefix = `${speaker}-${chapter}-`;
    const transFile = join(dir, `${speaker}-${chapter}.trans.txt`);
    const flacs = new Set(readdirSync(dir).filter((f) => f.endsWith('.flac')));
    const texts = new Map<string, string>();
    if (existsSync(transFile)) {
      readFileSync(transFile, 'utf8')
        .split(/\r?\n/)
        .forEach((line, i) => {
          if (line.trim() === '') return;
          const where = `${transFile}:${i + 1}`;
          const space = line.indexOf(' ');
          const id = space < 0 ? line : line.slice(0, space);
          const text = space < 0 ? '' : line.slice(space + 1).trim();
          if (!/^\d+-\d+-\d+$/.test(id) || !id.startsWith(prefix)) {
            log.report(new BadInputError('line_without_id', where, `transcript line has no utterance id of chapter ${speaker}-${chapter} (expected "${prefix}NNNN TEXT"): ${JSON.stringify(line.slice(0, 60))}`));
          } else if (texts.has(id)) {
            log.report(new BadInputError('duplicate_id', where, `duplicate utterance id ${id}`));
          } else if (text === '') {
            log.report(new BadInputError('empty_transcript', where, `utterance ${id} has no transcript text`));
            flacs.delete(`${id}.flac`); // reported once, as the line's problem
          } else if (!flacs.has(`${id}.flac`)) {
            log.report(new BadInputError('id_without_audio', where, `utterance ${id} has no audio file (${join(dir, `${id}.flac`)} not found)`));
          } else {
            texts.set(id, text);
          }
        });
    }
    for (const f of [...flacs].sort(numericOrder)) {
      const id = f.slice(0, -'.flac'.length);
      const file = join(dir, f);
      const text = texts.get(id);
      if (text === undefined) {
        log.report(new BadInputError('audio_without_transcript', file, `no transcript line for ${id} in ${transFile}${existsSync(transFile) ? '' : ' (file not found)'}`));
        continue;
      }
      const duration = audioDuration(file, o, log);
      if (duration === undefined) continue;
      utts.push({ id, audio: file, duration, text, speaker, split });
    }
  }
  return log.result(utts, splitDir);
}
