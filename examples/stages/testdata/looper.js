// Misbehaving guest for host tests: run never returns (a busy loop; the host's epoch/fuel
// deadline must stop it).
export function manifest() {
  return { name: 'looper', version: '0.1.0', reads: ['story'], writes: ['never'] };
}

export function run(input) {
  let n = 0;
  for (;;) {
    n = (n + input.story.body.length + 1) | 0;
  }
}
