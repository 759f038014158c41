// Newsroom enrichment stage "reading-level": Flesch reading ease of the story body.
// Built into a WebAssembly component (world newsroom:stage/stage@0.1.0) by componentize-js.
import { log } from 'newsroom:stage/host@0.1.0';
import { flesch, level } from './flesch.js';

export function manifest() {
  return {
    name: 'reading-level',
    version: '0.1.0',
    reads: ['story'],
    writes: ['flesch', 'level'],
  };
}

// A thrown string becomes Err(string): the story fails in this stage.
export function run(input) {
  const score = flesch(input.story.body);
  if (score === null) {
    throw `story ${input.story.id}: body has no words`;
  }
  const lvl = level(score);
  log('debug', `flesch ${score.toFixed(1)} (${lvl})`);
  return [
    { name: 'flesch', value: score.toFixed(1) },
    { name: 'level', value: lvl },
  ];
}
