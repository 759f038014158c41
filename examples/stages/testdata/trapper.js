// Misbehaving guest for host tests: run fails with an uncaught exception. Config key `how`:
//   "error" (default): throw new Error(...)   "string": throw a string
//   "recursion": unbounded recursion (stack overflow)
export function manifest() {
  return { name: 'trapper', version: '0.1.0', reads: ['story'], writes: ['never'] };
}

function deeper(n) {
  return deeper(n + 1) + 1;
}

export function run(input) {
  const how = (input.config.find(([k]) => k === 'how') ?? [null, 'error'])[1];
  if (how === 'string') throw 'trapper: thrown string';
  if (how === 'recursion') return [{ name: 'never', value: String(deeper(0)) }];
  throw new Error('trapper: uncaught exception');
}
