import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { brownSentences } from '../../src/data/text.js';
import { MIN_TEXT_VOCAB, TextTokenizer } from '../../src/tokenizers/text.js';

const sentences = brownSentences().slice(0, 2000);
const samples = [
  sentences[0]!,
  sentences[1234]!,
  'Unseen bytes survive: héllo, 日本語, ✓ and a literal <eos> tag.',
  'tabs\tand  double  spaces',
];
const modelVocab = (tk: TextTokenizer): Record<string, number> => JSON.parse(tk.toJSON()).model.vocab;

describe('TextTokenizer', async () => {
  const tk = await TextTokenizer.train(sentences, 300);

  test('has exactly the requested vocabulary, specials at 0..2', () => {
    assert.equal(tk.vocabSize, 300);
    const vocab = modelVocab(tk);
    assert.equal(Object.keys(vocab).length, 300);
    assert.deepEqual([...new Set(Object.values(vocab))].sort((a, b) => a - b), [...Array(300).keys()]);
    assert.deepEqual([vocab['<pad>'], vocab['<bos>'], vocab['<eos>']], [0, 1, 2]);
    assert.deepEqual([tk.pad, tk.bos, tk.eos], [0, 1, 2]);
  });

  test('encodes in range with no specials and round-trips exactly', async () => {
    for (const s of samples) {
      const ids = await tk.encode(s);
      assert.ok(ids.length > 0 && ids.every((id) => id >= 3 && id < 300), s);
      assert.equal(await tk.decode(ids), s);
      assert.equal(await tk.decode([tk.bos, ...ids, tk.eos, tk.pad, tk.pad]), s);
    }
  });

  test('its merges compress its own corpus', async () => {
    const tokens = (await tk.encodeBatch(sentences)).reduce((n, ids) => n + ids.length, 0);
    const bytes = sentences.reduce((n, s) => n + Buffer.byteLength(s), 0);
    assert.ok(tokens < 0.8 * bytes, `${tokens} tokens for ${bytes} bytes`); // about 0.71 at vocab 300
  });

  test('encodeBatch matches encode', async () => {
    const batch = await tk.encodeBatch(samples);
    assert.deepEqual(batch, await Promise.all(samples.map((s) => tk.encode(s))));
  });

  test('toJSON/fromJSON round-trips to identical ids', async () => {
    const again = TextTokenizer.fromJSON(tk.toJSON(), 'tok.json');
    assert.equal(again.vocabSize, 300);
    assert.equal(again.toJSON(), tk.toJSON());
    assert.deepEqual(await again.encodeBatch(sentences.slice(0, 200)), await tk.encodeBatch(sentences.slice(0, 200)));
  });

  test('a smaller vocabulary is a prefix of a larger one (merge order respected)', async () => {
    const big = modelVocab(await TextTokenizer.train(sentences, 400));
    for (const [token, id] of Object.entries(modelVocab(tk))) assert.equal(big[token], id, token);
  });

  test('fromJSON names the file on bad input', () => {
    assert.throws(() => TextTokenizer.fromJSON('{not json', '/x/tok.json'), /\/x\/tok\.json: not valid JSON/);
    const noSpecials = JSON.parse(tk.toJSON());
    delete noSpecials.model.vocab['<bos>'];
    assert.throws(() => TextTokenizer.fromJSON(JSON.stringify(noSpecials), '/x/t.json'), /\/x\/t\.json: special token <bos>/);
  });

  test('too large or too small a vocabulary is refused', async () => {
    await assert.rejects(TextTokenizer.train(sentences, 1_000_000), /at most \d+ \(asked for 1000000\)/);
    await assert.rejects(TextTokenizer.train(sentences, MIN_TEXT_VOCAB - 1), /vocabSize must be an integer >= 259/);
  });
});
