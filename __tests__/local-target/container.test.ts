// Unit tests of the container's pure parts (scripts/lib/local-target/container.ts). Booting it for real is in
// __tests__/integration/boot.local-target.test.ts.
import { localSshdDropin } from '../../scripts/lib/local-target/container.js';

describe('local target: names and formats', () => {
  test('the local-only sshd drop-in says where to listen and nothing else', () => {
    expect(
      localSshdDropin(2345)
        .split('\n')
        .filter((l) => l && !l.startsWith('#')),
    ).toEqual(['Port 2345', 'ListenAddress 127.0.0.1']);
  });
});
