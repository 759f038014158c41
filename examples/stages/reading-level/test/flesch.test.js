import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flesch, level, syllables, words, sentenceCount } from '../src/flesch.js';

test('syllables', () => {
  assert.equal(syllables('the'), 1);
  assert.equal(syllables('cat'), 1);
  assert.equal(syllables('table'), 2);
  assert.equal(syllables('government'), 3);
  assert.equal(syllables('international'), 5);
});

test('words and sentences', () => {
  assert.deepEqual(words("It's 3 o'clock, Mr. Smith."), ["It's", "o'clock", 'Mr', 'Smith']);
  assert.equal(sentenceCount('One. Two! Three?'), 3);
  assert.equal(sentenceCount('No terminal punctuation'), 1);
  assert.equal(sentenceCount('First paragraph\n\nSecond paragraph'), 2);
});

test('simple text is easy, dense text is hard', () => {
  const easy = flesch('The cat sat on the mat. The dog ran to the park. It was a good day.');
  assert.ok(easy >= 70, `easy=${easy}`);
  assert.equal(level(easy), 'easy');
  const hard = flesch(
    'The intergovernmental organisation characterised the unprecedented macroeconomic ' +
      'destabilisation as fundamentally attributable to institutional mismanagement.',
  );
  assert.ok(hard < 50, `hard=${hard}`);
  assert.equal(level(hard), 'hard');
});

test('levels', () => {
  assert.equal(level(70), 'easy');
  assert.equal(level(69.9), 'standard');
  assert.equal(level(50), 'standard');
  assert.equal(level(49.9), 'hard');
});

test('no words', () => {
  assert.equal(flesch(''), null);
  assert.equal(flesch('  123 -- 456 '), null);
});
