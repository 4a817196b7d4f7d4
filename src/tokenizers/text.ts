// Byte-level BPE tokenizer for the text tower, trained with Hugging Face `tokenizers`.
//
// The package's Node API cannot set a vocabulary size or special tokens when training (a second
// argument to train() is ignored), so we train with its defaults (it stops at a 30,000-token
// vocabulary, or sooner when a small corpus runs out of pairs) and then build the tokenizer.json
// ourselves: specials at ids 0..2, the full 256-symbol byte alphabet, then the first merges in
// learned order. BPE applies merges by rank, so cutting the merge list gives the same model with a
// smaller vocabulary.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { Tokenizer, byteLevelAlphabet } from 'tokenizers';

const SPECIALS = ['<pad>', '<bos>', '<eos>'] as const;
// The ByteLevel pre-tokenizer/decoder as tokenizer.json spells them. The Node package exports no
// byteLevelDecoder(), but Tokenizer.fromString accepts one written in the JSON.
const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };

type Merge = [string, string];
interface TokenizerJson {
  model: { type: string; vocab: Record<string, number>; merges: Merge[] };
  [key: string]: unknown;
}

/**
 * The trainer's alphabet is only the bytes it saw, and the resulting BPE silently DROPS any other
 * byte (an "é" vanishes). Starting from all 256 byte symbols makes encoding lossless on any text.
 */
function byteAlphabet(): string[] {
  return byteLevelAlphabet().sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
}

/** Smallest vocabulary we can build: the specials and the byte alphabet, no merges. */
export const MIN_TEXT_VOCAB = SPECIALS.length + 256;

/** Build the final tokenizer.json: specials, byte alphabet, then merges in rank order until full. */
function buildJson(learnedMerges: Merge[], vocabSize: number): string {
  const vocab: Record<string, number> = {};
  for (const s of [...SPECIALS, ...byteAlphabet()]) vocab[s] = Object.keys(vocab).length;
  let size = MIN_TEXT_VOCAB;
  const merges: Merge[] = [];
  for (const [a, b] of learnedMerges) {
    if (size === vocabSize) break;
    // Ranks only mean something if each merge builds on the alphabet or earlier merges: check it.
    if (!(a in vocab) || !(b in vocab)) throw new Error(`BPE merge "${a} ${b}" uses an unknown part`);
    merges.push([a, b]);
    // Two merges can spell the same token; it then needs no second id.
    if (!(a + b in vocab)) vocab[a + b] = size++;
  }
  if (size < vocabSize) {
    throw new Error(`text corpus supports a vocabulary of at most ${size} (asked for ${vocabSize})`);
  }
  // Specials live in the model's vocabulary, not in added_tokens: the library would otherwise
  // match a literal "<eos>" in the input text. encode() thus never emits them; decode() drops them.
  return JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: BYTE_LEVEL,
    post_processor: null,
    decoder: BYTE_LEVEL,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null,
      end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  });
}

/**
 * The library's trainer writes its progress output straight to file descriptor 1, which would
 * mix blank lines into the CLI's stdout (results users pipe to files): train in a child process
 * whose stdout goes nowhere.
 */
function trainInChild(corpus: string, out: string): void {
  const lib = createRequire(import.meta.url).resolve('tokenizers');
  const script =
    `const t = require(${JSON.stringify(lib)}); const tk = new t.Tokenizer(t.BPE.empty());` +
    `tk.setPreTokenizer(t.byteLevelPreTokenizer()); tk.train([process.argv[1]]); tk.save(process.argv[2]);`;
  const r = spawnSync(process.execPath, ['-e', script, corpus, out], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`BPE training failed: ${r.error?.message ?? r.stderr.trim()}`);
}

/** Train byte-level BPE on the sentences with the library's defaults; its merges in rank order. */
function learnMerges(sentences: string[]): Merge[] {
  const dir = mkdtempSync(join(tmpdir(), 'zipper-bpe-'));
  try {
    const corpus = join(dir, 'corpus.txt');
    writeFileSync(corpus, sentences.join('\n'));
    const out = join(dir, 'tokenizer.json');
    trainInChild(corpus, out);
    const { model } = JSON.parse(readFileSync(out, 'utf8')) as TokenizerJson;
    // Older releases write merges as "a b" strings, newer ones as pairs.
    return model.merges.map((m) => (typeof m === 'string' ? (m as string).split(' ') : m) as Merge);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export class TextTokenizer {
  readonly pad = 0;
  readonly bos = 1;
  readonly eos = 2;

  private constructor(
    private readonly tk: Tokenizer,
    private readonly json: string,
    readonly vocabSize: number,
  ) {}

  /** Train on the sentences; vocabSize counts the three specials and the 256 byte symbols. */
  static async train(sentences: string[], vocabSize: number): Promise<TextTokenizer> {
    if (!Number.isInteger(vocabSize) || vocabSize < MIN_TEXT_VOCAB) {
      throw new Error(`vocabSize must be an integer >= ${MIN_TEXT_VOCAB}, got ${vocabSize}`);
    }
    if (sentences.length === 0) throw new Error('cannot train a tokenizer on no sentences');
    return TextTokenizer.fromJSON(buildJson(learnMerges(sentences), vocabSize));
  }

  /** Load what toJSON() wrote; `source` (a file path) names the culprit in errors. */
  static fromJSON(json: string, source = '<string>'): TextTokenizer {
    let parsed: TokenizerJson;
    try {
      parsed = JSON.parse(json) as TokenizerJson;
    } catch (e) {
      throw new Error(`${source}: not valid JSON (${(e as Error).message})`);
    }
    const vocab = parsed?.model?.vocab;
    if (parsed?.model?.type !== 'BPE' || typeof vocab !== 'object' || vocab === null) {
      throw new Error(`${source}: not a BPE tokenizer.json`);
    }
    SPECIALS.forEach((s, id) => {
      if (vocab[s] !== id) throw new Error(`${source}: special token ${s} is not at id ${id}`);
    });
    let tk: Tokenizer;
    try {
      tk = Tokenizer.fromString(json);
    } catch (e) {
      throw new Error(`${source}: tokenizers rejected it (${(e as Error).message})`);
    }
    return new TextTokenizer(tk, json, Object.keys(vocab).length);
  }

  toJSON(): string {
    return this.json;
  }

  /** Token ids of the text, no specials added. */
  async encode(text: string): Promise<number[]> {
    return (await this.tk.encode(text, null, { addSpecialTokens: false })).getIds();
  }

  /** Batched encode, run in parallel inside the library. */
  async encodeBatch(texts: string[]): Promise<number[][]> {
    const encodings = await this.tk.encodeBatch(texts, { addSpecialTokens: false });
    return encodings.map((e) => e.getIds());
  }

  /**
   * Text of the ids, specials skipped. The pre-tokenizer adds a space before the first word (so a
   * word is one token wherever it stands) unless the text already starts with one; we remove one
   * leading space again, so decode(encode(s)) === s exactly for any s not starting with ' '.
   */
  async decode(ids: number[]): Promise<string> {
    const text = await this.tk.decode(ids.filter((id) => id >= SPECIALS.length), false);
    return text.startsWith(' ') ? text.slice(1) : text;
  }
}
