// `zipper data synth`: the built-in speech corpus, from plan to folder.
//
// Layout under the root:
//   LibriSpeech/<split>/<spk>/<ch>/<spk>-<ch>-<utt>.flac + <spk>-<ch>.trans.txt   (16 kHz)
//   LibriSpeech/SPEAKERS.TXT, CHAPTERS.TXT
//   LibriTTS/<split>/<spk>/<ch>/<spk>_<ch>_<par>_<sent>.wav (+ .normalized.txt, .original.txt),
//     <spk>_<ch>.trans.tsv   (24 kHz, for the splits in libritts.splits)
//   manifests/<split>.jsonl, manifests/libritts-<split>.jsonl
//   corpus.json   (config, its hash, counts and hours per split, speakers)
//
// Complete or marked incomplete: everything is written under <root>.partial/ beside an INCOMPLETE
// file; corpus.json is written last, then the folder is renamed to <root> and the marker removed.
// A folder with the marker is never taken as a corpus (the loaders refuse it too) and is rebuilt from
// scratch by the next run. A complete corpus whose config hash matches makes a re-run a no-op.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { type DataConfig, SYNTH_SPLITS, type SynthSplit } from '../../config/data-schema.js';
import { hashOf } from '../../config/hash.js';
import { createProgress } from '../../run/progress.js';
import type { Logger } from '../../run/log.js';
import { writeJsonFile } from '../../util/fs.js';
import { INCOMPLETE_MARKER } from '../librispeech.js';
import { type Utterance, writeManifest } from '../manifest.js';
import { makePlan, type Plan, type Speaker } from './plan.js';
import type { ChapterDone, ChapterJob } from './worker.js';

/** Bumped when the same config would give different audio or layout. */
export const SYNTH_VERSION = 1;

export interface SplitSummary {
  utterances: number;
  hours: number;
  speakers: string[];
  chapters: number;
}

export interface CorpusInfo {
  format: 'zipper-synth-corpus';
  version: number;
  config_hash: string;
  config: Omit<DataConfig, 'workers' | 'bad_input' | 'verify_audio'>;
  splits: Partial<Record<SynthSplit, SplitSummary>>;
  libritts: Partial<Record<SynthSplit, { utterances: number; hours: number; sample_rate: number }>>;
  speakers: (Speaker & { splits: SynthSplit[] })[];
  sentences: Plan['sentenceStats'];
  notes: string[];
}

export interface SynthResult {
  /** 'built' now, or 'complete' already (same config: nothing was done). */
  status: 'built' | 'complete';
  root: string;
  info: CorpusInfo;
  /** Wall seconds of this call, audio seconds written and their ratio (0 when nothing was built). */
  seconds: number;
  audioSeconds: number;
  workers: number;
}

export interface SynthOptions {
  log?: Logger;
  /** Progress bar on stderr (when it is a terminal). Default true. */
  progress?: boolean;
}

/** What determines the corpus's content: not the root, the number of workers or the loaders' settings. */
export function corpusHash(cfg: DataConfig): string {
  const { root: _r, ...content } = synthConfig(cfg);
  return hashOf({ version: SYNTH_VERSION, ...content });
}

function synthConfig(cfg: DataConfig): CorpusInfo['config'] {
  const { workers: _w, bad_input: _b, verify_audio: _v, ...rest } = cfg;
  return rest;
}

/** The corpus.json of a complete corpus at `root`, or undefined when there is none (or it is incomplete). */
export function readCorpusInfo(root: string): CorpusInfo | undefined {
  const file = join(root, 'corpus.json');
  if (!existsSync(file) || existsSync(join(root, INCOMPLETE_MARKER))) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as CorpusInfo;
}

export async function synthCorpus(cfg: DataConfig, opts: SynthOptions = {}): Promise<SynthResult> {
  const t0 = performance.now();
  const root = resolve(cfg.root);
  const hash = corpusHash(cfg);
  const existing = readCorpusInfo(root);
  if (existing) {
    if (existing.config_hash !== hash) {
      throw new Error(`${root} holds a corpus built from another config (hash ${existing.config_hash}, this one ${hash}): remove it or choose another root`);
    }
    opts.log?.info({ root, config_hash: hash }, 'corpus is complete for this config: nothing to do');
    return { status: 'complete', root, info: existing, seconds: 0, audioSeconds: 0, workers: 0 };
  }
  clearIncomplete(root, opts.log);
  const partial = `${root}.partial`;
  clearIncomplete(partial, opts.log);
  mkdirSync(partial, { recursive: true });
  writeFileSync(join(partial, INCOMPLETE_MARKER), `zipper data synth is building this corpus (pid ${process.pid}, started ${new Date().toISOString()})\n`);

  const plan = makePlan(cfg);
  const workers = Math.max(1, Math.min(cfg.workers || availableParallelism(), plan.chapters.length));
  const tts = new Set<SynthSplit>(cfg.libritts.splits);
  const jobs: ChapterJob[] = plan.chapters.map((chapter) => ({
    root: partial,
    chapter,
    ditherDbfs: cfg.noise.dither_dbfs,
    libriTtsRate: tts.has(chapter.split) ? cfg.libritts.sample_rate : null,
  }));
  const total = plan.chapters.reduce((n, c) => n + c.utterances.length, 0);
  opts.log?.info({ root, chapters: jobs.length, utterances: total, workers, estimated_hours: round(sum(Object.values(plan.estimated)) / 3600, 2) }, 'synthesising');
  const bar = createProgress(total, 'synth', { enabled: opts.progress ?? true });
  let audio = 0;
  let done: ChapterDone[];
  try {
    done = await runPool(jobs, workers, (d) => {
      audio += sum(d.durations);
      bar.increment(d.durations.length, { audio_h: round(audio / 3600, 2), x_rt: round(audio / ((performance.now() - t0) / 1000), 0) });
    });
  } finally {
    bar.stop();
  }

  const info = await writeIndex(partial, cfg, hash, plan, done);
  renameSync(partial, root);
  rmSync(join(root, INCOMPLETE_MARKER));
  const seconds = (performance.now() - t0) / 1000;
  opts.log?.info({ root, hours: round(audio / 3600, 3), seconds: round(seconds, 1), x_realtime: round(audio / seconds, 0) }, 'corpus complete');
  return { status: 'built', root, info, seconds, audioSeconds: audio, workers };
}

/** Removes a folder left by an interrupted build; refuses anything without the marker. */
function clearIncomplete(dir: string, log?: Logger): void {
  if (!existsSync(dir)) return;
  const marker = join(dir, INCOMPLETE_MARKER);
  if (!existsSync(marker)) throw new Error(`${dir} exists but is not a corpus built by zipper data synth (no corpus.json, no ${INCOMPLETE_MARKER} marker): remove it or choose another root`);
  const pid = Number(/pid (\d+)/.exec(readFileSync(marker, 'utf8'))?.[1]);
  if (pid && pid !== process.pid && isAlive(pid)) throw new Error(`${dir} is being built by process ${pid}`);
  log?.warn({ dir }, 'removing an incomplete corpus left by an interrupted build');
  rmSync(dir, { recursive: true, force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runs every job on `n` worker threads, results in job order; the first failure stops them all. */
async function runPool(jobs: ChapterJob[], n: number, onDone: (d: ChapterDone) => void): Promise<ChapterDone[]> {
  const results: ChapterDone[] = new Array(jobs.length);
  const threads = Array.from({ length: n }, () => new Worker(new URL('./worker.js', import.meta.url)));
  let next = 0;
  try {
    await Promise.all(
      threads.map(
        (w) =>
          new Promise<void>((resolveThread, reject) => {
            let current = -1;
            const feed = () => {
              if (next >= jobs.length) return resolveThread();
              current = next++;
              w.postMessage(jobs[current]);
            };
            w.on('message', (m: { ok: true; done: ChapterDone } | { ok: false; message: string }) => {
              if (!m.ok) return reject(new Error(`synthesis failed: ${m.message}`));
              results[current] = m.done;
              onDone(m.done);
              feed();
            });
            w.on('error', reject);
            w.on('exit', (code) => {
              if (current < 0 || results[current] === undefined) reject(new Error(`synthesis worker exited with code ${code}`));
            });
            feed();
          }),
      ),
    );
  } finally {
    await Promise.all(threads.map((w) => w.terminate()));
  }
  return results;
}

/** Manifests, SPEAKERS.TXT, CHAPTERS.TXT and (last) corpus.json. */
async function writeIndex(root: string, cfg: DataConfig, hash: string, plan: Plan, done: ChapterDone[]): Promise<CorpusInfo> {
  const manifests = join(root, 'manifests');
  mkdirSync(manifests, { recursive: true });
  const splits: CorpusInfo['splits'] = {};
  const libritts: CorpusInfo['libritts'] = {};
  const speakerSplits = new Map<string, Set<SynthSplit>>();
  for (const split of SYNTH_SPLITS) {
    const chapters = plan.chapters.map((c, i) => ({ c, d: done[i]! })).filter(({ c }) => c.split === split);
    if (chapters.length === 0) continue;
    const utts: Utterance[] = [];
    const tts: Utterance[] = [];
    for (const { c, d } of chapters) {
      (speakerSplits.get(c.speaker.id) ?? speakerSplits.set(c.speaker.id, new Set()).get(c.speaker.id)!).add(split);
      c.utterances.forEach((u, i) => {
        const audio = relative(manifests, join(root, 'LibriSpeech', split, c.speaker.id, c.chapter, `${u.id}.flac`));
        // The unlabelled pool is audio only: its transcripts are on disk but never in its manifest.
        const text = split === 'train-unlabelled' ? '' : u.sentence.text;
        utts.push({ id: u.id, audio, duration: d.durations[i]!, text, speaker: c.speaker.id, split });
        const t = d.libriTts?.[i];
        if (t) {
          const wav = relative(manifests, join(root, 'LibriTTS', split, c.speaker.id, c.chapter, `${t.id}.wav`));
          tts.push({ id: t.id, audio: wav, duration: t.duration, text: u.sentence.text, speaker: c.speaker.id, split });
        }
      });
    }
    utts.sort((a, b) => compareIds(a.id, b.id));
    await writeManifest(join(manifests, `${split}.jsonl`), utts);
    splits[split] = {
      utterances: utts.length,
      hours: round(sum(utts.map((u) => u.duration)) / 3600, 4),
      speakers: [...new Set(chapters.map(({ c }) => c.speaker.id))],
      chapters: chapters.length,
    };
    if (tts.length > 0) {
      tts.sort((a, b) => compareIds(a.id, b.id));
      await writeManifest(join(manifests, `libritts-${split}.jsonl`), tts);
      libritts[split] = { utterances: tts.length, hours: round(sum(tts.map((u) => u.duration)) / 3600, 4), sample_rate: cfg.libritts.sample_rate };
    }
  }
  const speakers = plan.speakers.filter((s) => speakerSplits.has(s.id)).map((s) => ({ ...s, splits: [...speakerSplits.get(s.id)!] }));
  writeLibriSpeechIndex(root, plan, done, speakers);
  const info: CorpusInfo = {
    format: 'zipper-synth-corpus',
    version: SYNTH_VERSION,
    config_hash: hash,
    config: synthConfig(cfg),
    splits,
    libritts,
    speakers,
    sentences: plan.sentenceStats,
    notes: [
      'Brown sentences with digits, symbols, abbreviations or acronyms were dropped, not spelled out.',
      'train-unlabelled: transcripts are in its trans.txt files, but its manifest text is empty.',
      'dev/test speakers are (voice, rate, pitch) settings unseen in training; *-other adds white noise and speed perturbation.',
      'LibriTTS copies are the 16 kHz audio upsampled: nothing above 8 kHz.',
    ],
  };
  await writeJsonFile(join(root, 'corpus.json'), info);
  return info;
}

/** LibriSpeech's root index files, with our speakers' settings as their "names". */
function writeLibriSpeechIndex(root: string, plan: Plan, done: ChapterDone[], speakers: CorpusInfo['speakers']): void {
  const minutes = plan.chapters.map((_, i) => sum(done[i]!.durations) / 60);
  const bySpeaker = new Map<string, number>();
  plan.chapters.forEach((c, i) => bySpeaker.set(c.speaker.id, (bySpeaker.get(c.speaker.id) ?? 0) + minutes[i]!));
  const speakerLines = [';ID  |SEX| SUBSET(S)                 |MINUTES| NAME'];
  for (const s of speakers) {
    const sex = s.voice === 'slt' ? 'F' : 'M';
    speakerLines.push(`${s.id.padEnd(5)}| ${sex} | ${s.splits.join(',').padEnd(26)}| ${bySpeaker.get(s.id)!.toFixed(2).padStart(6)}| flite ${s.voice} rate ${s.rate} pitch ${s.pitch}`);
  }
  const chapterLines = [';ID      |READER|MINUTES| SUBSET           | BOOK'];
  plan.chapters.forEach((c, i) => {
    chapterLines.push(`${c.chapter.padEnd(8)}| ${c.speaker.id.padEnd(5)}| ${minutes[i]!.toFixed(2).padStart(6)}| ${c.split.padEnd(17)}| Brown corpus`);
  });
  const ls = join(root, 'LibriSpeech');
  writeFileSync(join(ls, 'SPEAKERS.TXT'), speakerLines.join('\n') + '\n');
  writeFileSync(join(ls, 'CHAPTERS.TXT'), chapterLines.join('\n') + '\n');
}

function compareIds(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function round(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}

