// The `zipper tokenize` stage: learn (or load) the speech codebook on the unlabelled pool, then
// write every split's units.
//
// Output folder:
//   speech-tokenizer.json   the tokenizer (config, codebook, normalisation statistics)
//   <split>.jsonl           one line per utterance: {"id": ..., "units": [ids 3..K+2]}
//   tokens.json             written last: the cache key, inputs' hashes, counts and unit statistics
// A folder without tokens.json, or whose tokens.json does not match the files beside it, is
// incomplete and never reused: the first thing a run that must rewrite does is delete tokens.json.
//
// Cache: the key is the hash of the tokenizer (its config and the unlabelled manifest's content hash,
// or a loaded tokenizer file's content hash), every manifest's content hash and the bad-input
// policy. Audio files are not hashed: a manifest names them, so change the manifest with them.
import fs from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { hashOf, sha256Hex } from '../../config/hash.js';
import type { TokenizeConfig } from '../../config/speech-schema.js';
import { readManifest, resolveAudio, type Utterance } from '../../data/manifest.js';
import { createLogger } from '../../run/log.js';
import { createProgress } from '../../run/progress.js';
import { writeFileAtomic } from '../../util/fs.js';
import { SpeechPool, type EncodedItem, type Item, type ItemResult } from './pool.js';
import { entropyBits, histogram, speakerDominatedShare, totalVariation } from './stats.js';
import { SpeechTokenizer, UNIT_OFFSET, expectedVectors, type PoolPart } from './tokenizer.js';

/** The corpus splits, in the order they are tokenized. */
export const SPEECH_SPLITS = ['train-unlabelled', 'train-aligned', 'dev-clean', 'test-clean', 'dev-other', 'test-other'] as const;
/** The codebook is learned on this split. */
export const POOL_SPLIT = 'train-unlabelled';
export const TOKENS_FORMAT = 'zipper-speech-tokens';
export const TOKENS_VERSION = 1;
export const TOKENIZER_FILE = 'speech-tokenizer.json';
export const TOKENS_FILE = 'tokens.json';

/** Where a split's manifest lives under a corpus root. */
export const manifestPath = (corpus: string, split: string) => path.join(corpus, 'manifests', `${split}.jsonl`);

export interface SplitRecord {
  file: string;
  sha256: string;
  utterances: number;
  units: number;
  seconds: number;
  /** Files skipped under on_bad_audio: skip (their messages: the first 20). */
  skipped: number;
  skipped_files: string[];
  resampled: number;
  unigram_entropy_bits: number;
  /**
   * Total-variation distance of the unit histogram from the pool's (the first split's when there is
   * no pool): SCALE.md saw noise move it from 0.06 to 0.69.
   */
  tv_from_pool: number;
}

export interface TokensRecord {
  format: typeof TOKENS_FORMAT;
  version: number;
  cache_key: string;
  tokenizer: { file: string; sha256: string; key: string; source: string; config_hash: string; vocab_size: number; codebook_size: number; units_per_second: number };
  manifests: Record<string, { file: string; sha256: string }>;
  splits: Record<string, SplitRecord>;
  stats: {
    pool_unigram_entropy_bits: number;
    /** log2 K: the entropy of uniform unit use. */
    uniform_entropy_bits: number;
    units_used: number;
    /** Share of pool units in clusters where one speaker supplies over half of the occurrences. */
    speaker_dominated_share: number | null;
    speakers: number | null;
  };
  timing: {
    workers: number;
    codebook_seconds: number | null;
    tokenize_seconds: number;
    audio_seconds: number;
    x_real_time: number;
    /** Rows searched on the workers (k-means passes included), those whose float32 scores were too close to call, and those of them that needed the full reference scan. */
    rows: number;
    rechecked_rows: number;
    scanned_rows: number;
  };
}

export interface TokenizeOptions {
  /** Corpus root: manifests/<split>.jsonl. */
  corpus: string;
  /** Output folder (created). */
  out: string;
  cfg: TokenizeConfig;
  /** Use this tokenizer file rather than learning one. */
  tokenizerFile?: string;
  progress?: boolean;
  log?: Logger;
}

export interface TokenizeSummary {
  out: string;
  reused: boolean;
  tokenizer: 'trained' | 'loaded' | 'reused';
  record: TokensRecord;
}


function readText(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${what} ${file}: ${code === 'ENOENT' ? 'file not found' : (e as Error).message}`);
  }
}

interface SplitInput {
  split: string;
  manifest: string;
  sha256: string;
  utterances: Utterance[];
}

/** The splits whose manifests exist (readManifest rejects an empty one, naming its file). */
function readSplits(corpus: string): SplitInput[] {
  const found: SplitInput[] = [];
  for (const split of SPEECH_SPLITS) {
    const manifest = manifestPath(corpus, split);
    if (!fs.existsSync(manifest)) continue;
    const utterances = readManifest(manifest);
    found.push({ split, manifest, sha256: sha256Hex(fs.readFileSync(manifest)), utterances });
  }
  if (found.length === 0) throw new Error(`no manifests in ${path.join(corpus, 'manifests')} (expected ${SPEECH_SPLITS.map((s) => `${s}.jsonl`).join(', ')})`);
  return found;
}

const itemsOf = (s: SplitInput): Item[] => s.utterances.map((u) => ({ id: u.id, file: resolveAudio(s.manifest, u), seconds: u.duration }));

/** tokens.json of `out` when it is complete and matches `key` (every file it lists unchanged). */
function completeRecord(out: string, key: string): TokensRecord | null {
  let rec: TokensRecord;
  try {
    rec = JSON.parse(fs.readFileSync(path.join(out, TOKENS_FILE), 'utf8')) as TokensRecord;
  } catch {
    return null;
  }
  if (rec.format !== TOKENS_FORMAT || rec.version !== TOKENS_VERSION || rec.cache_key !== key) return null;
  const files = [{ file: rec.tokenizer.file, sha256: rec.tokenizer.sha256 }, ...Object.values(rec.splits)];
  for (const f of files) {
    try {
      if (sha256Hex(fs.readFileSync(path.join(out, f.file))) !== f.sha256) return null;
    } catch {
      return null;
    }
  }
  return rec;
}

/**
 * Reads a split's token file from a tokens folder, refusing an incomplete folder. Returns the
 * utterances in manifest order with their unit ids (offset included).
 */
export function readTokenSplit(dir: string, split: string): { id: string; units: number[] }[] {
  const recFile = path.join(dir, TOKENS_FILE);
  if (!fs.existsSync(recFile)) throw new Error(`token folder ${dir} is incomplete (no ${TOKENS_FILE}): run zipper tokenize again`);
  const rec = JSON.parse(readText(recFile, 'tokens record')) as TokensRecord;
  const s = rec.splits?.[split];
  if (!s) throw new Error(`${recFile}: no split "${split}" (has ${Object.keys(rec.splits ?? {}).join(', ')})`);
  const file = path.join(dir, s.file);
  const text = readText(file, 'token file');
  if (sha256Hex(text) !== s.sha256) throw new Error(`token file ${file} does not match ${recFile} (changed or half-written): run zipper tokenize again`);
  return text
    .split('\n')
    .filter((l) => l)
    .map((l, i) => {
      try {
        return JSON.parse(l) as { id: string; units: number[] };
      } catch (e) {
        throw new Error(`token file ${file} line ${i + 1}: ${(e as Error).message}`);
      }
    });
}

/** Fails on the first bad item under "stop", else counts; returns the indices that worked. */
function applyPolicy<T>(results: ItemResult<T>[], policy: 'stop' | 'skip', skipped: string[]): number[] {
  const ok: number[] = [];
  results.forEach((r, i) => {
    if (r.ok) ok.push(i);
    else if (policy === 'stop') throw new Error(`${r.error} (set on_bad_audio: skip to skip such files)`);
    else skipped.push(r.error);
  });
  return ok;
}

export async function tokenizeCorpus(o: TokenizeOptions): Promise<TokenizeSummary> {
  const log = o.log ?? createLogger();
  const t0 = performance.now();
  const cfg = o.cfg;
  const splits = readSplits(o.corpus);
  const pool = splits.find((s) => s.split === POOL_SPLIT);

  // The tokenizer's identity, known before any training.
  let loaded: { tk: SpeechTokenizer; text: string } | null = null;
  let tokKey: string;
  if (o.tokenizerFile) {
    const text = readText(o.tokenizerFile, 'speech tokenizer');
    loaded = { tk: SpeechTokenizer.fromJSON(text, o.tokenizerFile), text };
    tokKey = sha256Hex(text);
  } else {
    if (!pool) throw new Error(`${manifestPath(o.corpus, POOL_SPLIT)}: file not found (the codebook is learned on ${POOL_SPLIT}; or pass --tokenizer)`);
    tokKey = hashOf({ config: cfg.tokenizer, pool: pool.sha256 });
  }
  const key = hashOf({
    version: TOKENS_VERSION,
    tokenizer: tokKey,
    manifests: Object.fromEntries(splits.map((s) => [s.split, s.sha256])),
    policy: { on_bad_audio: cfg.on_bad_audio, other_sample_rate: cfg.other_sample_rate },
  });
  const existing = completeRecord(o.out, key);
  if (existing) {
    log.info({ out: o.out, cache_key: key }, `reusing the tokens in ${o.out}: inputs unchanged (cache key ${key})`);
    return { out: o.out, reused: true, tokenizer: 'reused', record: existing };
  }

  fs.mkdirSync(o.out, { recursive: true });
  // From here the folder is incomplete until tokens.json is written again.
  fs.rmSync(path.join(o.out, TOKENS_FILE), { force: true });
  const workers = cfg.workers === 'auto' ? Math.min(8, availableParallelism()) : cfg.workers;
  const resample = cfg.other_sample_rate === 'resample';
  const threads = SpeechPool.start(workers);
  const progressOpt = o.progress === undefined ? {} : { enabled: o.progress };
  const skipped = new Map<string, string[]>(splits.map((s) => [s.split, []]));
  const resampledCount = new Map<string, number>(splits.map((s) => [s.split, 0]));
  try {
    // 1. The tokenizer: loaded, reused from the folder (same config and pool), or learned.
    let tk: SpeechTokenizer;
    let source: TokenizeSummary['tokenizer'];
    let codebookSeconds: number | null = null;
    const tokFile = path.join(o.out, TOKENIZER_FILE);
    const previous = loaded ? null : reusableTokenizer(tokFile, tokKey);
    if (loaded) {
      tk = loaded.tk;
      source = 'loaded';
      log.info({ tokenizer: o.tokenizerFile, codebook_size: tk.k }, `using the speech tokenizer ${o.tokenizerFile}`);
    } else if (previous) {
      tk = previous;
      source = 'reused';
      log.info({ tokenizer: tokFile }, `reusing the codebook in ${tokFile}: same config and ${POOL_SPLIT} manifest`);
    } else {
      const tc = performance.now();
      tk = await learnTokenizer(pool!, cfg, threads, skipped.get(POOL_SPLIT)!, log, progressOpt, tokKey);
      codebookSeconds = (performance.now() - tc) / 1000;
      source = 'trained';
    }
    const tokText = loaded?.text ?? tk.toJSON();
    if (!previous) await writeFileAtomic(tokFile, tokText);

    // 2. Units for every split.
    await threads.loadTokenizer(tokText, tokFile);
    const total = splits.reduce((n, s) => n + s.utterances.length, 0);
    const bar = createProgress(total, 'tokenize', progressOpt);
    const tt = performance.now();
    let audioSeconds = 0;
    let doneBefore = 0;
    const perSplit = new Map<string, { ids: string[]; units: Int32Array[]; speakers: string[]; seconds: number }>();
    try {
      for (const s of splits) {
        const results = await threads.encode(itemsOf(s), resample, (done) => bar.update(doneBefore + done));
        doneBefore += s.utterances.length;
        const sk = skipped.get(s.split)!;
        // The pool's files were already checked while learning: do not count them twice.
        const ok = applyPolicy(results, cfg.on_bad_audio, s.split === POOL_SPLIT && source === 'trained' ? [] : sk);
        const ids: string[] = [];
        const units: Int32Array[] = [];
        const speakers: string[] = [];
        let seconds = 0;
        for (const i of ok) {
          const r = results[i]! as Extract<ItemResult<EncodedItem>, { ok: true }>;
          ids.push(s.utterances[i]!.id);
          speakers.push(String(s.utterances[i]!.speaker));
          units.push(r.value.units);
          seconds += r.value.seconds;
          if (r.resampled) resampledCount.set(s.split, resampledCount.get(s.split)! + 1);
        }
        if (ids.length === 0) throw new Error(`manifest ${s.manifest}: no utterance could be tokenized (${sk.length} skipped)`);
        audioSeconds += seconds;
        perSplit.set(s.split, { ids, units, speakers, seconds });
      }
    } finally {
      bar.stop();
    }
    const tokenizeSeconds = (performance.now() - tt) / 1000;
    const searchStats = await threads.stats();

    // 3. Files, then the record that makes the folder complete.
    const poolHist = histogram((perSplit.get(POOL_SPLIT) ?? perSplit.values().next().value!).units, tk.k);
    const records: Record<string, SplitRecord> = {};
    for (const s of splits) {
      const d = perSplit.get(s.split)!;
      const lines = d.ids.map((id, i) => JSON.stringify({ id, units: Array.from(d.units[i]!, (u) => u + UNIT_OFFSET) })).join('\n') + '\n';
      const file = `${s.split}.jsonl`;
      await writeFileAtomic(path.join(o.out, file), lines);
      const hist = histogram(d.units, tk.k);
      const sk = skipped.get(s.split)!;
      records[s.split] = {
        file,
        sha256: sha256Hex(lines),
        utterances: d.ids.length,
        units: d.units.reduce((n, u) => n + u.length, 0),
        seconds: Number(d.seconds.toFixed(2)),
        skipped: sk.length,
        skipped_files: sk.slice(0, 20),
        resampled: resampledCount.get(s.split)!,
        unigram_entropy_bits: round(entropyBits(hist)),
        tv_from_pool: round(totalVariation(hist, poolHist)),
      };
    }
    // Token files of splits whose manifests are gone would look current: remove them.
    for (const split of SPEECH_SPLITS) if (!records[split]) fs.rmSync(path.join(o.out, `${split}.jsonl`), { force: true });
    const poolData = perSplit.get(POOL_SPLIT);
    const dominance = poolData ? speakerDominatedShare(poolData.units, poolData.speakers, tk.k) : null;
    const record: TokensRecord = {
      format: TOKENS_FORMAT,
      version: TOKENS_VERSION,
      cache_key: key,
      tokenizer: {
        file: TOKENIZER_FILE,
        sha256: sha256Hex(tokText),
        key: tokKey,
        source: loaded ? path.resolve(o.tokenizerFile!) : source,
        config_hash: hashOf(tk.config),
        vocab_size: tk.vocabSize,
        codebook_size: tk.k,
        units_per_second: round(1000 / (tk.config.mel.hop_ms * tk.config.stack)),
      },
      manifests: Object.fromEntries(splits.map((s) => [s.split, { file: path.resolve(s.manifest), sha256: s.sha256 }])),
      splits: records,
      stats: {
        pool_unigram_entropy_bits: round(entropyBits(poolHist)),
        uniform_entropy_bits: round(Math.log2(tk.k)),
        units_used: poolHist.reduce((n, c) => n + (c > 0 ? 1 : 0), 0),
        speaker_dominated_share: dominance ? round(dominance.share) : null,
        speakers: dominance?.speakers ?? null,
      },
      timing: {
        workers,
        codebook_seconds: codebookSeconds === null ? null : round(codebookSeconds),
        tokenize_seconds: round(tokenizeSeconds),
        audio_seconds: round(audioSeconds),
        x_real_time: round(audioSeconds / tokenizeSeconds),
        rows: searchStats.rows,
        rechecked_rows: searchStats.rechecked,
        scanned_rows: searchStats.scanned,
      },
    };
    await writeFileAtomic(path.join(o.out, TOKENS_FILE), JSON.stringify(record, null, 2) + '\n');
    log.info(
      { out: o.out, seconds: round((performance.now() - t0) / 1000), x_real_time: record.timing.x_real_time, entropy_bits: record.stats.pool_unigram_entropy_bits },
      `wrote speech tokens for ${splits.length} splits to ${o.out}`,
    );
    return { out: o.out, reused: false, tokenizer: source, record };
  } finally {
    threads.close();
  }
}

const round = (x: number) => Number(x.toPrecision(6));

/** The tokenizer already in the folder, when it was learned with the same key. */
function reusableTokenizer(file: string, key: string): SpeechTokenizer | null {
  if (!fs.existsSync(file)) return null;
  try {
    const tk = SpeechTokenizer.fromJSON(fs.readFileSync(file, 'utf8'), file);
    return tk.training.key === key ? tk : null;
  } catch {
    return null;
  }
}

/** Features of the pool (a seeded sample of its vectors), then k-means on the workers. */
async function learnTokenizer(
  pool: SplitInput,
  cfg: TokenizeConfig,
  threads: SpeechPool,
  skipped: string[],
  log: Logger,
  progressOpt: { enabled?: boolean },
  key: string,
): Promise<SpeechTokenizer> {
  const tcfg = cfg.tokenizer;
  const expected = pool.utterances.reduce((n, u) => n + expectedVectors(tcfg, u.duration), 0);
  // A little over the target, so the seeded cut in SpeechTokenizer.train decides the final size.
  const keep = Math.min(1, (1.1 * tcfg.kmeans.train_vectors) / Math.max(1, expected));
  const items = itemsOf(pool);
  const bar = createProgress(items.length, 'features', progressOpt);
  let results: ItemResult<PoolPart>[];
  try {
    results = await threads.poolParts(items, tcfg, keep, tcfg.kmeans.seed, cfg.other_sample_rate === 'resample', (done) => bar.update(done));
  } finally {
    bar.stop();
  }
  const parts = applyPolicy(results, cfg.on_bad_audio, skipped).map((i) => (results[i] as Extract<ItemResult<PoolPart>, { ok: true }>).value);
  const k = tcfg.kmeans.codebook_size;
  log.info({ utterances: parts.length, codebook_size: k, iterations: tcfg.kmeans.iterations }, `learning a ${k}-unit codebook on ${POOL_SPLIT}`);
  const km = createProgress(tcfg.kmeans.iterations + 1, 'k-means', progressOpt);
  try {
    return await SpeechTokenizer.train(parts, tcfg, {
      search: threads.search(),
      key,
      onProgress: (p) => {
        km.update(p.iteration + 1, { inertia: p.inertia });
        if (p.stage === 'init' || p.iteration === tcfg.kmeans.iterations) log.debug({ iteration: p.iteration, inertia: p.inertia }, 'k-means');
      },
    });
  } finally {
    km.stop();
    await threads.releaseRows();
  }
}
