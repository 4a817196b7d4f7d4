import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FLITE_RATE, fliteSpeak } from '../../src/data/synth/flite.js';
import { activePower, changeSpeed } from '../../src/data/synth/perturb.js';
import { fromInt16 } from '../../src/data/audio.js';

const sentences = ['the jury said it did find that many laws are outmoded', "it's a long way, he said", 'get pig drunk'];

describe('flite through our WASI', () => {
  test('one run speaks a batch as one utterance per sentence, the same every time', () => {
    const a = fliteSpeak(sentences, { voice: 'kal16', stretch: 1, f0Shift: 1 });
    assert.equal(a.length, 3);
    for (const u of a) assert.ok(u.length > 0.5 * FLITE_RATE && u.length < 6 * FLITE_RATE, `${u.length} samples`);
    assert.ok(a[0]!.length > a[2]!.length);
    assert.deepEqual(fliteSpeak(sentences, { voice: 'kal16', stretch: 1, f0Shift: 1 }), a);
  });

  test('rate stretches the speech; a speed change shortens it', () => {
    const [slow] = fliteSpeak([sentences[0]!], { voice: 'kal16', stretch: 1.2, f0Shift: 1 });
    const [base] = fliteSpeak([sentences[0]!], { voice: 'kal16', stretch: 1, f0Shift: 1 });
    assert.ok(Math.abs(slow!.length / base!.length - 1.2) < 0.05);
    const fast = changeSpeed(fromInt16(base!), 1.1);
    assert.equal(fast.length, Math.round(base!.length / 1.1));
    assert.ok(activePower(fast) > 0);
  });

  test('refuses input flite could split or expand', () => {
    assert.throws(() => fliteSpeak(['it cost 5 dollars'], { voice: 'kal16', stretch: 1, f0Shift: 1 }), /plain words and commas/);
    assert.throws(() => fliteSpeak(['one. two'], { voice: 'kal16', stretch: 1, f0Shift: 1 }), /plain words and commas/);
  });
});
