import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wordCount } from '../src/words.js';

test('word count', () => {
  assert.equal(wordCount(''), 0);
  assert.equal(wordCount('One two\n\nthree  four.'), 4);
});
