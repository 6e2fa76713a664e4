import { ensurePackages, missingPackages, packagesFor } from '../../scripts/lib/core/system-deps.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';
import { runResult } from '../../scripts/lib/core/process.js';

const dpkg = (installed: string[]) => (cmd: string, args: string[]) => {
  if (cmd !== 'dpkg-query') return runResult({ status: 0 });
  const names = args.slice(2);
  return runResult({
    status: 0,
    stdout: names.map((n) => `${n} ${installed.includes(n) ? 'ii ' : 'un '}`).join('\n'),
  });
};

describe('system deps', () => {
  it('the test purpose needs everything the demo needs, plus shellcheck', () => {
    expect(Object.keys(packagesFor('test'))).toEqual(
      expect.arrayContaining([...Object.keys(packagesFor('demo')), 'shellcheck']),
    );
  });

  it('finds missing packages from dpkg-query status', () => {
    expect(missingPackages(['btrbk', 'zstd'], dpkg(['zstd']))).toEqual(['btrbk']);
  });

  it('without root, refuses with the one sudo apt-get line', () => {
    try {
      ensurePackages('demo', { runSync: dpkg(['btrbk']), isRoot: false, log: () => {} });
      throw new Error('expected an error');
    } catch (e) {
      expect(e).toBeInstanceOf(OperatorError);
      expect((e as OperatorError).next).toMatch(/^sudo apt-get install -y .*btrfs-progs/);
      expect((e as OperatorError).next).not.toMatch(/ btrbk( |$)/);
    }
  });

  it('as root, installs only what is missing', () => {
    const calls: string[][] = [];
    let installed = ['btrbk'];
    const runSync = (cmd: string, args: string[]) => {
      calls.push([cmd, ...args]);
      if (cmd === 'apt-get' && args[0] === 'install') installed = Object.keys(packagesFor('demo'));
      if (cmd === 'dpkg-query') return dpkg(installed)(cmd, args);
      return runResult({ status: 0 });
    };
    const r = ensurePackages('demo', { runSync, isRoot: true, log: () => {} });
    expect(r.installed).not.toContain('btrbk');
    expect(r.installed).toContain('debootstrap');
    const install = calls.find((c) => c[0] === 'apt-get' && c[1] === 'install')!;
    expect(install).not.toContain('btrbk');
  });
});
