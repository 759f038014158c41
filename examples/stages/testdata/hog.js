// Misbehaving guest for host tests: run allocates about 200 MB (1 MB chunks, kept alive),
// then returns. The host's memory limit should make it fail first.
export function manifest() {
  return { name: 'hog', version: '0.1.0', reads: ['story'], writes: ['allocated-mb'] };
}

const kept = [];

export function run(input) {
  for (let i = 0; i < 200; i++) {
    const chunk = new Uint8Array(1024 * 1024);
    chunk.fill(i & 0xff); // touch every page
    kept.push(chunk);
  }
  return [{ name: 'allocated-mb', value: String(kept.length) }];
}
