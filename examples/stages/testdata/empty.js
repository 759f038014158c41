// Guest for the host's overhead benchmark: declares no fields and returns none, at once.
export function manifest() {
  return { name: 'empty', version: '0.1.0', reads: [], writes: [] };
}

export function run(input) {
  return [];
}
