import { readFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import type { TowerShape } from '../config/schema.js';
import { toolkitInfo } from '../run/env.js';
import { num } from './rewrite.js';

const { onnx } = onnxProto;

/**
 * What an export file says about itself: ModelProto.metadata_props under `zipper.*` keys (format,
 * toolkit, version, kind, graph, modality, config, tokenizer, specials, checkpoint,
 * checkpoint_step, kv_cache), all strings, JSON where structured. A reader that meets another
 * format version refuses it rather than guess: bump EXPORT_FORMAT when inputs, outputs or keys change.
 */
export const EXPORT_FORMAT = 'zipper-onnx/1';
export const EXPORT_KIND = 'tower';
export const KEY = (k: string) => `zipper.${k}`;

export interface KvCacheLayout {
  batch: number;
  layers: number;
  heads: number;
  head_dim: number;
  /** Cache slots per layer (max_len): inputs past_k<i>/past_v<i>, outputs k<i>/v<i>, [B, H, C, D]. */
  capacity: number;
  /** Newest entry last; after P tokens the first C - P slots are empty. */
  align: 'right';
  /** The additive mask value for a hidden slot. */
  masked: number;
}

export interface ExportMetadata {
  file: string;
  format: string;
  toolkit: { name: string; version: string };
  kind: string;
  graph: 'step';
  modality: string;
  config: TowerShape;
  tokenizer: string | null;
  specials: { pad: number; bos: number; eos: number };
  checkpoint: string;
  step: number;
  kvCache: KvCacheLayout;
}

export function toolkit(): { name: string; version: string } {
  return toolkitInfo() ?? { name: 'zipper', version: 'unknown' };
}

/**
 * The metadata of a zipper export, validated: errors name the file and say what it is instead
 * (not ONNX, no zipper metadata, another format version, another model kind).
 */
export function readExportMetadata(file: string, kind = EXPORT_KIND): ExportMetadata {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read ONNX export ${file}: ${(e as Error).message}`);
  }
  let model: InstanceType<typeof onnx.ModelProto>;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`${file} is not an ONNX file (${(e as Error).message})`);
  }
  // Protobuf decodes many byte strings without complaint: a model has an IR version and a graph.
  if (num(model.irVersion) < 1 || !model.graph || !model.graph.node?.length) throw new Error(`${file} is not an ONNX file (no IR version or no graph)`);
  const props = new Map(model.metadataProps.map((p) => [p.key ?? '', p.value ?? '']));
  const get = (k: string) => props.get(KEY(k));
  const format = get('format');
  if (format === undefined) {
    const by = model.producerName ? `written by ${model.producerName}${model.producerVersion ? ` ${model.producerVersion}` : ''}` : 'no producer named';
    throw new Error(`${file} has no zipper metadata (no ${KEY('format')} entry; ${by}): not a zipper export`);
  }
  const tk = toolkit();
  if (format !== EXPORT_FORMAT)
    throw new Error(`${file} is a ${format} export written by ${get('toolkit') ?? 'zipper'} ${get('version') ?? '(unknown version)'}; zipper ${tk.version} reads ${EXPORT_FORMAT}: export the checkpoint again with this version`);
  if (get('kind') !== kind) throw new Error(`${file} holds a ${get('kind') ?? 'model of unnamed kind'}, not a ${kind}`);
  const need = (k: string) => {
    const v = get(k);
    if (v === undefined) throw new Error(`${file}: zipper metadata lacks ${KEY(k)}`);
    return v;
  };
  const json = <T>(k: string): T => {
    const text = need(k);
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new Error(`${file}: zipper metadata ${KEY(k)} is not valid JSON (${(e as Error).message})`);
    }
  };
  const modality = need('modality');
  if (modality === 'text') need('tokenizer');
  const graph = need('graph');
  if (graph !== 'step') throw new Error(`${file} holds a "${graph}" graph; this zipper reads "step" exports`);
  return {
    file,
    format,
    toolkit: { name: need('toolkit'), version: need('version') },
    kind,
    graph,
    modality,
    config: json<TowerShape>('config'),
    tokenizer: get('tokenizer') ?? null,
    specials: json('specials'),
    checkpoint: need('checkpoint'),
    step: Number(need('checkpoint_step')),
    kvCache: json<KvCacheLayout>('kv_cache'),
  };
}
