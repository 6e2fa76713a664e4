// Unit tests of the boot script's markers as the local target reads them (scripts/lib/local-target/boot-script.ts).
import { parseMarker } from '../../scripts/lib/local-target/boot-script.js';

describe('local target: names and formats', () => {
  test('marker files parse as key=value lines', () => {
    expect(parseMarker('version=1\ncompleted=2025-01-01T00:00:00Z\nnoise\nstep=mount\n')).toEqual({
      version: '1',
      completed: '2025-01-01T00:00:00Z',
      step: 'mount',
    });
  });
});
