// Newsroom enrichment stage "{{name}}" (JavaScript, componentize-js).
//
// The component implements world newsroom:stage/stage@0.1.0 (wit/newsroom-stage.wit).
// Throw a *string* to fail the story in this stage (Err); throwing an Error object, or any
// other uncaught failure, traps. Built with every WASI feature disabled: console.* output is
// dropped, Date.now() and Math.random() are frozen at build time; use log() and input.nowMs.
import { log } from 'newsroom:stage/host@0.1.0';
import { wordCount } from './words.js';

export function manifest() {
  return { name: '{{name}}', version: '0.1.0', reads: ['story'], writes: ['words'] };
}

export function run(input) {
  const n = wordCount(input.story.body);
  log('debug', `${n} words`);
  return [{ name: 'words', value: String(n) }];
}
