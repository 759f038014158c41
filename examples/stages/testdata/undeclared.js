// Misbehaving guest for host tests: writes a field that its manifest does not declare.
export function manifest() {
  return { name: 'undeclared', version: '0.1.0', reads: ['story'], writes: ['declared'] };
}

export function run(input) {
  return [
    { name: 'declared', value: 'ok' },
    { name: 'not-declared', value: 'the host must reject this' },
  ];
}
