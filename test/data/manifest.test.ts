import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { librispeechStyle, readManifest, resolveAudio, type Utterance, writeManifest } from '../../src/data/manifest.js';
import { normaliseSentence } from '../../src/data/synth/sentences.js';

const dir = mkdtempSync(join(tmpdir(), 'zipper-manifest-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const utt: Utterance = { id: '19-198-0001', audio: '../LibriSpeech/dev-clean/19/198/19-198-0001.flac', duration: 3.5, text: "IT'S TEXAS' LAW", speaker: '19', split: 'dev-clean' };

describe('manifest', () => {
  test('writes JSON lines and reads them back', async () => {
    const file = join(dir, 'm', 'dev.jsonl');
    mkdirSync(join(dir, 'm'));
    const abs = { ...utt, id: '19-198-0002', audio: '/data/x.flac', text: '' };
    await writeManifest(file, [utt, abs]);
    assert.deepEqual(readManifest(file), [utt, abs]);
    assert.equal(resolveAudio(file, utt), join(dir, 'LibriSpeech/dev-clean/19/198/19-198-0001.flac'));
    assert.equal(resolveAudio(file, abs), '/data/x.flac');
  });

  test('names the file and line of a bad record', () => {
    const good = JSON.stringify(utt);
    const cases: [string, RegExp][] = [
      [`${good}\n{"id": "x"`, /bad\.jsonl:2: not valid JSON/],
      [`${good}\n\n${JSON.stringify({ ...utt, id: 'b', duration: -1 })}`, /bad\.jsonl:3: bad utterance: "duration"/],
      [JSON.stringify({ ...utt, extra: 1 }), /bad\.jsonl:1: bad utterance: .*extra/],
      [JSON.stringify({ ...utt, text: undefined }), /bad\.jsonl:1: bad utterance: "text"/],
      [`${good}\n${good}`, /bad\.jsonl:2: duplicate id 19-198-0001 \(first on line 1\)/],
      ['\n\n', /bad\.jsonl: no utterances \(empty split\)/],
    ];
    for (const [text, message] of cases) {
      writeFileSync(join(dir, 'bad.jsonl'), text);
      assert.throws(() => readManifest(join(dir, 'bad.jsonl')), message);
    }
    assert.throws(() => readManifest(join(dir, 'none.jsonl')), /none\.jsonl: file not found/);
  });
});

describe('transcripts', () => {
  test('librispeechStyle: upper case, apostrophes inside words, hyphens split', () => {
    assert.equal(librispeechStyle(`"Don't," he said -- it's Texas' well-known 'pro' law.`), "DON'T HE SAID IT'S TEXAS' WELL KNOWN PRO LAW");
    assert.equal(librispeechStyle('  Café   au lait!\n'), 'CAFÉ AU LAIT');
  });

  test('Brown sentences: flite reads exactly the transcript; unspeakable ones are dropped', () => {
    const s = normaliseSentence('However, the jury said it believes "these two offices should be combined".', 4, 25);
    assert.ok(typeof s === 'object');
    assert.equal(s.text, 'HOWEVER THE JURY SAID IT BELIEVES THESE TWO OFFICES SHOULD BE COMBINED');
    assert.equal(s.spoken, 'however, the jury said it believes these two offices should be combined');
    assert.equal(librispeechStyle(s.spoken), s.text);
    assert.equal(normaliseSentence('The couple was married Aug. 2, 1913.', 4, 25), 'symbols');
    assert.equal(normaliseSentence('Mayor William B. Hartsfield filed suit for divorce.', 4, 25), 'abbreviations');
    assert.equal(normaliseSentence('The state GOP chairman said so today.', 4, 25), 'acronyms');
    assert.equal(normaliseSentence('Yes, he did.', 4, 25), 'length');
  });
});
