// A synthesis worker thread: speaks whole chapters of the plan and writes their files. One flite
// module per thread (compiled on the first chapter), one flite run per chapter.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort } from 'node:worker_threads';
import { encodeFlac, encodeWav, fromInt16, resample } from '../audio.js';
import { Rng } from '../../util/rng.js';
import { FLITE_RATE, fliteSpeak, type FliteVoice } from './flite.js';
import { addDither, addNoise, changeSpeed } from './perturb.js';
import type { Chapter } from './plan.js';

export interface ChapterJob {
  /** The corpus folder being built. */
  root: string;
  chapter: Chapter;
  ditherDbfs: number | null;
  /** Also write the chapter in the LibriTTS layout at this rate. */
  libriTtsRate: number | null;
}

export interface ChapterDone {
  chapter: string;
  /** Seconds of each utterance, in plan order. */
  durations: number[];
  /** LibriTTS ids and durations, when a LibriTTS copy was written. */
  libriTts: { id: string; duration: number }[] | null;
}

/** Voices whose pitch flite's f0_shift does not move (measured): their pitch is changed by resampling. */
const F0_SHIFT_IGNORED = new Set<FliteVoice>(['rms']);

export function synthChapter(job: ChapterJob): ChapterDone {
  const { chapter: ch, root } = job;
  const spk = ch.speaker;
  // For a voice that ignores f0_shift: speak `pitch` times slower, then play `pitch` times faster,
  // which restores the duration and moves f0 and formants together (a smaller or larger voice).
  const emulatePitch = F0_SHIFT_IGNORED.has(spk.voice) && spk.pitch !== 1;
  const pcm = fliteSpeak(
    ch.utterances.map((u) => u.sentence.spoken),
    { voice: spk.voice, stretch: spk.rate * (emulatePitch ? spk.pitch : 1), f0Shift: emulatePitch ? 1 : spk.pitch },
  );
  const lsDir = join(root, 'LibriSpeech', ch.split, spk.id, ch.chapter);
  const ttsDir = join(root, 'LibriTTS', ch.split, spk.id, ch.chapter);
  mkdirSync(lsDir, { recursive: true });
  if (job.libriTtsRate !== null) mkdirSync(ttsDir, { recursive: true });
  const durations: number[] = [];
  const libriTts: { id: string; duration: number }[] = [];
  const tsv: string[] = [];
  ch.utterances.forEach((u, i) => {
    let x = fromInt16(pcm[i]!);
    if (emulatePitch) x = changeSpeed(x, spk.pitch);
    x = changeSpeed(x, u.speed);
    const rng = new Rng(u.seed);
    if (u.snrDb !== null) addNoise(x, u.snrDb, rng);
    if (job.ditherDbfs !== null) addDither(x, job.ditherDbfs, rng);
    writeFileSync(join(lsDir, `${u.id}.flac`), encodeFlac(x, FLITE_RATE));
    durations.push(x.length / FLITE_RATE);
    if (job.libriTtsRate !== null) {
      const id = `${spk.id}_${ch.chapter}_${String(i).padStart(6, '0')}_000000`;
      const y = resample(x, FLITE_RATE, job.libriTtsRate);
      writeFileSync(join(ttsDir, `${id}.wav`), encodeWav(y, job.libriTtsRate));
      // Brown sentences with digits and abbreviations were dropped: the written form is already normalised.
      writeFileSync(join(ttsDir, `${id}.normalized.txt`), u.sentence.original);
      writeFileSync(join(ttsDir, `${id}.original.txt`), u.sentence.original);
      tsv.push(`${id}\t${u.sentence.original}\t${u.sentence.original}\n`);
      libriTts.push({ id, duration: y.length / job.libriTtsRate });
    }
  });
  // train-unlabelled keeps its transcripts on disk too (LibriSpeech layout); its manifest does not.
  writeFileSync(join(lsDir, `${spk.id}-${ch.chapter}.trans.txt`), ch.utterances.map((u) => `${u.id} ${u.sentence.text}\n`).join(''));
  if (job.libriTtsRate !== null) writeFileSync(join(ttsDir, `${spk.id}_${ch.chapter}.trans.tsv`), tsv.join(''));
  return { chapter: ch.chapter, durations, libriTts: job.libriTtsRate !== null ? libriTts : null };
}

parentPort?.on('message', (job: ChapterJob) => {
  try {
    parentPort!.postMessage({ ok: true, done: synthChapter(job) });
  } catch (err) {
    parentPort!.postMessage({ ok: false, message: `chapter ${job.chapter.chapter} (${job.chapter.split}): ${(err as Error).message}` });
  }
});
