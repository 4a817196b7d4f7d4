// The stage graph of a study: corpus -> tokens -> speech tower; text tower; judge; one fine-tuning
// stage per distinct cell; its evaluations. Every stage is a `zipper` command whose output folder is
// named by the hash of its resolved inputs (config and upstream folders), so a stage is built once
// and shared by every cell (and every study) that needs it, and a rerun finds it done.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import { DataConfig } from '../config/data-schema.js';
import { FuseConfig } from '../config/fuse-schema.js';
import { hashOf } from '../config/hash.js';
import { ConfigError, loadConfig } from '../config/load.js';
import { PretrainConfig } from '../config/schema.js';
import { TokenizeConfig } from '../config/speech-schema.js';
import { expandCells, formatValue, type CellSpec, type StageRef, type Study } from './study.js';

export type StageKind = 'corpus' | 'tokens' | 'text_tower' | 'speech_tower' | 'judge' | 'fuse' | 'eval_asr' | 'eval_tts';

export interface Stage {
  /** `<kind>-<hash>`: unique in the graph, and the folder's name in the cache. */
  id: string;
  kind: StageKind;
  /** What the stage writes. */
  dir: string;
  /** `zipper` arguments that build it (the exact command, recorded in its log). */
  args: string[];
  deps: string[];
  /**
   * Its record (record.ts): under status/ in its run directory; an evaluation's in its cell's;
   * the corpus's and the tokens' in the cache's status/ (their commands refuse a folder they did
   * not make).
   */
  record: string;
  /** Its log, <cache>/logs/<id>.log: the exact command of each launch, then its output. */
  log: string;
  /** Finished (a rerun skips it). */
  done(): boolean;
}

/** A cell of the study with the stages that make its results. */
export interface Cell extends CellSpec {
  fuse: Stage;
  asr?: Stage;
  tts?: Stage;
}

export interface StudyGraph {
  stages: Stage[];
  cells: Cell[];
  corpus: Stage;
  tokens: Stage;
  judge?: Stage;
}

const sets = (xs: string[]) => xs.flatMap((s) => ['--set', s]);
/** A run folder (towers, judge, cells) is finished when its summary says it ran to the end. */
function runFinished(dir: string): boolean {
  const f = join(dir, 'summary.json');
  if (!existsSync(f)) return false;
  try {
    return JSON.parse(readFileSync(f, 'utf8')).interrupted !== true;
  } catch {
    return false;
  }
}

/** Resolves (and so validates) a stage's config, naming the study, the stage and the cell on error. */
function resolveConfig<S extends z.ZodType>(study: Study, schema: S, ref: StageRef, extra: string[], where: string): z.infer<S> {
  try {
    return loadConfig(schema, { file: ref.config, sets: [...ref.set, ...extra] });
  } catch (err) {
    throw new ConfigError(`${study.file}: ${where}: ${(err as Error).message}`);
  }
}

export function buildGraph(study: Study): StudyGraph {
  const c = study.cfg;
  const cache = c.cache; // absolute (loadStudy resolves it against the study file)
  const stages = new Map<string, Stage>();
  const add = (s: Omit<Stage, 'log'>): Stage => {
    if (!stages.has(s.id)) stages.set(s.id, { ...s, log: join(cache, 'logs', `${s.id}.log`) });
    return stages.get(s.id)!;
  };

  // The corpus: its root is the output, and thread counts change nothing that is written.
  const dataCfg = resolveConfig(study, DataConfig, c.corpus, [], 'corpus');
  const corpusId = `corpus-${hashOf({ ...dataCfg, root: null, workers: null })}`;
  const corpusDir = join(cache, corpusId);
  const shared = (id: string) => join(cache, 'status', `${id}.json`);
  const inRun = (dir: string, id: string) => join(dir, 'status', `${id}.json`);
  const corpus = add({ id: corpusId, kind: 'corpus', dir: corpusDir, record: shared(corpusId), deps: [], args: ['data', 'synth', '--config', c.corpus.config, ...sets([...c.corpus.set, `root=${corpusDir}`]), '--no-progress'], done: () => existsSync(join(corpusDir, 'corpus.json')) });

  const tokCfg = resolveConfig(study, TokenizeConfig, c.tokens, [], 'tokens');
  const tokensId = `tokens-${hashOf({ cfg: { ...tokCfg, workers: null }, corpus: corpusId })}`;
  const tokensDir = join(cache, tokensId);
  const tokens = add({ id: tokensId, kind: 'tokens', dir: tokensDir, record: shared(tokensId), deps: [corpusId], args: ['tokenize', '--corpus', corpusDir, '--out', tokensDir, '--config', c.tokens.config, ...sets(c.tokens.set), '--no-progress'], done: () => existsSync(join(tokensDir, 'tokens.json')) });

  // Upstream folders enter a stage's hash as the upstream stage's id, not as a path: the same study
  // gives the same hashes wherever its cache lives.
  const tower = (kind: 'text_tower' | 'speech_tower', modality: 'text' | 'speech', inputs: [string, Stage][]): Stage => {
    const ref = c[kind];
    const cfg = resolveConfig(study, PretrainConfig, ref, inputs.map(([k, s]) => `${k}=${s.id}`), kind);
    if (cfg.modality !== modality) throw new ConfigError(`${study.file}: ${kind}: ${ref.config} configures a ${cfg.modality} tower`);
    const id = `${modality}-${hashOf(cfg)}`;
    const dir = join(cache, id);
    const extra = inputs.map(([k, s]) => `${k}=${s.dir}`);
    return add({ id, kind, dir, record: inRun(dir, id), deps: inputs.map(([, s]) => s.id), args: ['pretrain', '--modality', modality, '--config', ref.config, ...sets([...ref.set, ...extra]), '--runs-dir', cache, '--name', id, '--resume', '--no-progress'], done: () => runFinished(dir) });
  };
  const text = tower('text_tower', 'text', []);
  const speech = tower('speech_tower', 'speech', [['data.source', tokens]]);

  // Fine-tuning runs (the judge and every cell) read the same towers and data.
  const inputs: [string, Stage][] = [['text_tower', text], ['speech_tower', speech], ['data.corpus', corpus], ['data.tokens', tokens]];
  const fuseStage = (kind: 'judge' | 'fuse', ref: StageRef, extra: string[], where: string, command: string[]): Stage => {
    const cfg = resolveConfig(study, FuseConfig, ref, [...extra, ...inputs.map(([k, s]) => `${k}=${s.id}`)], where);
    const id = `${kind}-${hashOf(cfg)}`;
    const dir = join(cache, id);
    const paths = inputs.map(([k, s]) => `${k}=${s.dir}`);
    return add({ id, kind, dir, record: inRun(dir, id), deps: inputs.map(([, s]) => s.id), args: [...command, '--config', ref.config, ...sets([...ref.set, ...extra, ...paths]), '--runs-dir', cache, '--name', id, '--resume', '--no-progress'], done: () => runFinished(dir) });
  };
  const judge = c.judge ? fuseStage('judge', c.judge, [], 'judge', ['judge', 'train']) : undefined;

  const cells: Cell[] = expandCells(study).map((spec) => {
    const extra = Object.entries(spec.values).map(([k, v]) => `${k}=${formatValue(v)}`);
    const fuse = fuseStage('fuse', c.fuse, extra, `table ${spec.table}, cell ${spec.label}`, ['fuse']);
    const cell: Cell = { ...spec, fuse };
    const asr = c.eval.asr;
    if (asr) {
      const id = `asr-${hashOf({ fuse: fuse.id, asr })}`;
      const out = join(fuse.dir, 'eval', id);
      cell.asr = add({
        id,
        kind: 'eval_asr',
        dir: out,
        record: inRun(fuse.dir, id),
        deps: [fuse.id],
        args: ['eval', 'asr', '--run', fuse.dir, '--corpus', corpusDir, '--tokens', tokensDir, '--splits', asr.splits.join(','), '--beam', String(asr.beam), '--batch', String(asr.batch), ...(asr.limit ? ['--limit', String(asr.limit)] : []), '--out', out],
        done: () => asr.splits.every((s) => existsSync(join(out, s, 'summary.json'))),
      });
    }
    const tts = c.eval.tts;
    if (tts && judge) {
      const id = `tts-${hashOf({ fuse: fuse.id, judge: judge.id, tts })}`;
      const out = join(fuse.dir, 'eval', id);
      cell.tts = add({
        id,
        kind: 'eval_tts',
        dir: out,
        record: inRun(fuse.dir, id),
        deps: [fuse.id, judge.id],
        args: ['eval', 'tts', '--run', fuse.dir, '--judge', judge.dir, '--corpus', corpusDir, '--split', tts.split, '--beam', String(tts.beam), '--batch', String(tts.batch), ...(tts.limit ? ['--limit', String(tts.limit)] : []), '--out', out],
        done: () => existsSync(join(out, tts.split, 'summary.json')),
      });
    }
    return cell;
  });
  return { stages: [...stages.values()], cells, corpus, tokens, judge };
}
