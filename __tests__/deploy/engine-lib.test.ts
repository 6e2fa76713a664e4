// scripts/lib/deploy/engine.ts: which engine, which mirror, and the CLI configuration that keeps providers offline.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  engineEnv,
  findEngine,
  findProviderMirror,
  parseTestOutput,
  writeCliConfig,
} from '../../scripts/lib/deploy/engine.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'btrbk-engine-lib-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A fake engine binary that answers `version` like the real one. */
function fakeEngine(binDir: string, name: string, banner: string) {
  fs.mkdirSync(binDir, { recursive: true });
  const file = path.join(binDir, name);
  fs.writeFileSync(file, `#!/bin/sh\necho '${banner}'\n`, { mode: 0o755 });
  return file;
}

describe('findEngine', () => {
  test('prefers tofu over terraform on PATH', () => {
    const bin = path.join(dir, 'bin');
    fakeEngine(bin, 'terraform', 'Terraform v1.11.4');
    const tofu = fakeEngine(bin, 'tofu', 'OpenTofu v1.9.1');
    expect(findEngine({ env: { PATH: bin } })).toEqual({ name: 'tofu', path: tofu, version: '1.9.1' });
  });

  test('falls back to terraform', () => {
    const bin = path.join(dir, 'bin');
    const tf = fakeEngine(bin, 'terraform', 'Terraform v1.11.4\non linux_amd64');
    expect(findEngine({ env: { PATH: bin } })).toEqual({ name: 'terraform', path: tf, version: '1.11.4' });
  });

  test('TERRAFORM_BINARY_NAME overrides the preference', () => {
    const bin = path.join(dir, 'bin');
    const tf = fakeEngine(bin, 'terraform', 'Terraform v1.11.4');
    fakeEngine(bin, 'tofu', 'OpenTofu v1.9.1');
    expect(findEngine({ env: { PATH: bin, TERRAFORM_BINARY_NAME: 'terraform' } }).path).toBe(tf);
  });

  test('says what to do when no engine is found', () => {
    expect(() => findEngine({ env: { PATH: path.join(dir, 'empty') } })).toThrow(
      /neither tofu nor terraform is on PATH/,
    );
    expect(() => findEngine({ env: { PATH: dir, TERRAFORM_BINARY_NAME: 'tofu' } })).toThrow(
      /TERRAFORM_BINARY_NAME=tofu is not an executable/,
    );
  });

  test('refuses a binary that does not answer like an engine', () => {
    const bin = path.join(dir, 'bin');
    fakeEngine(bin, 'tofu', 'hello');
    expect(() => findEngine({ env: { PATH: bin } })).toThrow(/does not answer like OpenTofu or Terraform/);
  });
});

describe('provider mirror and CLI configuration', () => {
  const makeMirror = (root: string) => {
    const platform = path.join(root, 'registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64');
    fs.mkdirSync(platform, { recursive: true });
    fs.writeFileSync(path.join(platform, 'terraform-provider-aws_v5.100.0_x5'), 'binary');
    return root;
  };

  test('TF_PROVIDER_MIRROR is searched first; a directory without hashicorp/aws is not a mirror', () => {
    const mirror = makeMirror(path.join(dir, 'mirror'));
    expect(findProviderMirror({ env: { TF_PROVIDER_MIRROR: mirror, HOME: dir } })).toBe(mirror);
    fs.mkdirSync(path.join(dir, 'not-a-mirror'));
    const found = findProviderMirror({ env: { TF_PROVIDER_MIRROR: path.join(dir, 'not-a-mirror'), HOME: dir } });
    expect(found).not.toBe(path.join(dir, 'not-a-mirror'));
  });

  test('the configuration installs hashicorp/aws from the mirror under both registries’ addresses, never directly', () => {
    const mirror = makeMirror(path.join(dir, 'mirror'));
    const file = writeCliConfig(path.join(dir, 'cfg'), { mirror });
    const text = fs.readFileSync(file, 'utf8');
    expect(text).toMatch(/filesystem_mirror \{\s+path\s+= ".*\/cfg\/mirror"/);
    expect(text).toMatch(
      /direct \{\s+exclude = \["registry.terraform.io\/hashicorp\/aws", "registry.opentofu.org\/hashicorp\/aws"\]/,
    );
    for (const host of ['registry.terraform.io', 'registry.opentofu.org']) {
      const linked = path.join(
        dir,
        'cfg/mirror',
        host,
        'hashicorp/aws/5.100.0/linux_amd64/terraform-provider-aws_v5.100.0_x5',
      );
      expect(fs.readFileSync(linked, 'utf8')).toBe('binary');
    }
  });

  test('without a mirror the configuration is empty', () => {
    const text = fs.readFileSync(writeCliConfig(path.join(dir, 'cfg'), { mirror: null }), 'utf8');
    expect(text).not.toContain('provider_installation');
  });

  test('engineEnv points both engines at the configuration and turns off prompts and update checks', () => {
    const env = engineEnv('/x/engine.tfrc', { PATH: '/bin' });
    expect(env).toMatchObject({
      PATH: '/bin',
      TF_CLI_CONFIG_FILE: '/x/engine.tfrc',
      TOFU_CLI_CONFIG_FILE: '/x/engine.tfrc',
      TF_IN_AUTOMATION: '1',
      CHECKPOINT_DISABLE: '1',
    });
  });
});

test('parseTestOutput reads file and run results', () => {
  const out = [
    'tests/a.tftest.hcl... in progress',
    '  run "one"... pass',
    '  run "two"... fail',
    'tests/a.tftest.hcl... tearing down',
    'tests/a.tftest.hcl... fail',
    '',
    'Failure! 1 passed, 1 failed.',
  ].join('\n');
  expect(parseTestOutput(out)).toEqual({
    files: { 'tests/a.tftest.hcl': 'fail' },
    runs: { 'tests/a.tftest.hcl/one': 'pass', 'tests/a.tftest.hcl/two': 'fail' },
  });
});
