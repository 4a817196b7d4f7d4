import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import onnxProto from 'onnx-proto';
import { flatten } from '../engine/onnx/layout.js';
import { buildStepGraph, inferenceSlots } from '../engine/onnx/tower-graphs.js';
import { MASKED } from '../model/attention.js';
import { writeFileAtomic } from '../util/fs.js';
import { EXPORT_FORMAT, EXPORT_KIND, KEY, toolkit, type ExportMetadata, type KvCacheLayout } from './metadata.js';
import { foldParams, standardMatMul } from './rewrite.js';
import { loadTowerSource, type TowerSource } from './source.js';
import { verifyExport, type Verification } from './verify.js';

const { onnx } = onnxProto;

/**
 * `zipper export --format onnx`: a tower checkpoint as ONE self-contained ONNX file (opset 17,
 * standard domain only, weights as named initializers) holding the engine's own KV-cache step
 * graph (tower-graphs.ts), plus metadata a user needs to drive it without zipper.
 *
 * Only the step graph: the engine's prefill graph has a static prompt length, useless to anyone
 * with other prompts, while feeding a prompt one token at a time through the step graph gives the
 * same logits (the verification checks exactly that) and keeps a caller's loop to one call.
 *
 * Inputs (B = the export's batch, C = max_len, H heads, D = d_model / H):
 *   ids int32 [B, 1], positions int32 [B, 1], mask float32 [B, 1, 1, C + 1],
 *   past_k<i>, past_v<i> float32 [B, H, C, D] for each layer i (zeros at the start).
 * Outputs: logits float32 [B, V] for the fed token; k<i>, v<i> [B, H, C, D], the next past.
 * The cache is right-aligned: after P tokens, slot j holds token P - C + j; the mask puts MASKED
 * on the C - P empty slots (and a row's padding) and 0 elsewhere; slot C is the fed token.
 */

export { EXPORT_FORMAT, EXPORT_KIND, readExportMetadata, type ExportMetadata, type KvCacheLayout } from './metadata.js';

export interface ExportOptions {
  /** Rows per call, fixed in the graph (static shapes); 1 by default. */
  batch?: number;
  /** Run the file against the engine's decoder before writing it (default true). */
  verify?: boolean;
}

export interface ExportResult {
  file: string;
  bytes: number;
  parameters: number;
  metadata: ExportMetadata;
  verification: Verification | null;
}

/** The file's bytes; pure (no disk writes), so tests and verification can use it directly. */
export function buildTowerExport(src: TowerSource, batch = 1): { bytes: Uint8Array; metadata: Omit<ExportMetadata, 'file'> } {
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`export batch must be a positive integer, got ${batch}`);
  const s = src.shape;
  const slots = inferenceSlots(s);
  // Standard opset 17 only (no com.microsoft Gelu), the flat weights input foldParams expects.
  const model = onnx.ModelProto.decode(buildStepGraph(s, batch, { fused: false, weights: 'flat', cache: 'window' }).toBytes('zipper_tower_step'));
  foldParams(model, slots, flatten(slots, src.params, `checkpoint ${src.dir}`));
  standardMatMul(model);
  const tk = toolkit();
  const kvCache: KvCacheLayout = { batch, layers: s.n_layers, heads: s.n_heads, head_dim: s.d_model / s.n_heads, capacity: s.max_len, align: 'right', masked: MASKED };
  const metadata = { format: EXPORT_FORMAT, toolkit: tk, kind: EXPORT_KIND, graph: 'step' as const, modality: src.info.modality, config: s, tokenizer: src.tokenizer, specials: src.specials, checkpoint: resolve(src.dir), step: src.info.step, kvCache };
  const props: Record<string, string> = {
    format: EXPORT_FORMAT,
    toolkit: tk.name,
    version: tk.version,
    kind: EXPORT_KIND,
    graph: 'step',
    modality: src.info.modality,
    config: JSON.stringify(s),
    specials: JSON.stringify(src.specials),
    checkpoint: metadata.checkpoint,
    checkpoint_step: String(src.info.step),
    kv_cache: JSON.stringify(kvCache),
    ...(src.tokenizer !== null ? { tokenizer: src.tokenizer } : {}),
  };
  model.metadataProps = Object.entries(props).map(([k, value]) => ({ key: KEY(k), value }));
  model.producerVersion = tk.version;
  model.docString =
    `zipper ${EXPORT_KIND} (${src.info.modality}, step ${src.info.step}): one KV-cache decoding step. ` +
    `Feed ids/positions [B,1], mask [B,1,1,C+1] (${MASKED} on empty cache slots), past_k<i>/past_v<i>; ` +
    `get logits [B,V] and k<i>/v<i> (the next past). Metadata keys zipper.*.`;
  return { bytes: onnx.ModelProto.encode(model).finish(), metadata };
}

/**
 * Exports a tower checkpoint folder to `outFile`. Everything that can fail (incomplete checkpoint,
 * the graph rewrite, the verification) happens before the file is written, and the write is
 * atomic: a failed export leaves no file and an earlier export intact.
 */
export async function exportTowerOnnx(checkpointDir: string, outFile: string, opts: ExportOptions = {}): Promise<ExportResult> {
  if (existsSync(outFile) && statSync(outFile).isDirectory()) throw new Error(`export target ${outFile} is a folder; give a file name`);
  const src = loadTowerSource(checkpointDir);
  const { bytes, metadata } = buildTowerExport(src, opts.batch ?? 1);
  const verification = opts.verify === false ? null : await verifyExport(bytes, src, opts.batch ?? 1);
  mkdirSync(dirname(resolve(outFile)), { recursive: true });
  await writeFileAtomic(outFile, bytes);
  const parameters = inferenceSlots(src.shape).reduce((n, s) => n + s.size, 0);
  return { file: outFile, bytes: bytes.length, parameters, metadata: { file: outFile, ...metadata }, verification };
}
