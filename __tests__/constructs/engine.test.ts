// Engine checks of the synthesized stack with the real hashicorp/aws provider schema, offline: `validate`, and
// the engine's native `test` command with `mock_provider "aws"` (no credentials) running engine-tests/*.tftest.hcl;
// then the negative controls, which show those tests failing on a broken stack or a broken fixture.
// The engine is tofu when on PATH, else terraform (TERRAFORM_BINARY_NAME overrides); the provider comes from the
// machine's filesystem mirror. Without an engine or a mirror this suite FAILS (it never skips, never downloads).
import { jest } from '@jest/globals';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { App } from 'cdktf';
import { BackupTargetStack, STACK_NAME } from '../../constructs/backup-target-stack.js';
import { renderBootScript, renderHostPayload } from '../../user-data/render.js';
import { payloadObjectKey } from '../../constructs/host-payload.js';
import { VARIABLES } from '../../constructs/variables.js';
import {
  AWS_PROVIDER_ADDRESSES,
  parseTestOutput,
  prepareStackDir,
  type EngineResult,
  type PreparedStack,
} from '../../scripts/lib/deploy/engine.js';

const ROOT = path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '..', '..');
const TESTS_DIR = path.join(ROOT, 'engine-tests');
const literals = JSON.parse(fs.readFileSync(path.join(TESTS_DIR, 'fixtures/literals.json'), 'utf8')) as {
  volumeId: string;
  publicIp: string;
  sshPublicKey: string;
  adminSshPublicKey: string;
  payloadBucketDomain: string;
  devices: Record<string, string>;
};
const testFiles = fs
  .readdirSync(TESTS_DIR)
  .filter((f) => f.endsWith('.tftest.hcl'))
  .sort();
/** Every `run "name"` block the test files declare: each must be reported as passed. */
const declaredRuns = testFiles.flatMap((f) =>
  [...fs.readFileSync(path.join(TESTS_DIR, f), 'utf8').matchAll(/^run "([^"]+)"/gm)].map((m) => `tests/${f}/${m[1]}`),
);

type Json = Record<string, any>;
// What it costs: the engine starts the provider (a Go program of 700 MB) for the validate, the plan and the apply
// of every run block, about 0.75 CPU seconds each time; so one provider process, started once in its debug mode,
// serves every engine run here (TF_REATTACH_PROVIDERS, see serveProvider). With that, bad-variables.tftest.hcl
// refusing one bad value of every variable per run block (17 run blocks, from 64) and the controls running only
// the run blocks they need (16, in one engine run), this file took 131 and 136 CPU seconds (user+sys, jest
// included) and 5.8 and 8.8 minutes, in two runs at a load of 13 to 15 on 2 cores; the same measure before: 414
// and 408 CPU seconds, 22 and 18.5 minutes (this file and the former engine-instance-type.test.ts). Each run block
// still costs about 1 CPU second, the engine's own work for its validate, plan and apply. The wall time grows with
// the machine's load: hence the long timeout.
const ENGINE_TEST_TIMEOUT_MS = 1_200_000;
// The provider and the engine are Go programs, and most of their CPU here was Go's garbage collector: each engine run
// decodes the provider's schema (a heap of about 300 MB) and drops it. Collecting when the heap has grown fivefold
// (GOGC=400), up to 1 GiB (GOMEMLIMIT: past it Go collects anyway), took this file from 114 to 62-72 CPU seconds and
// from 64 to 40-45 s on an idle machine, at a peak of about 1 GB per process instead of 390 MB. (With no collector at
// all, GOGC=off, memory ran away: 332 s of system time, three tests failed.)
const ENGINE_GO_ENV = { GOGC: '400', GOMEMLIMIT: '1GiB' };
jest.setTimeout(ENGINE_TEST_TIMEOUT_MS);
/** `<engine> test` with the long timeout. */
const engineTest = (stack: PreparedStack, args: string[] = []): EngineResult =>
  stack.runEngine(['test', '-no-color', ...args], { timeoutMs: ENGINE_TEST_TIMEOUT_MS });
let work: string;
let synthesized: Json;
/** The environment of every engine run after the first init: the shared provider's TF_REATTACH_PROVIDERS. */
let reattachEnv: NodeJS.ProcessEnv | undefined;
let provider: ServedProvider | undefined;

/**
 * What the defaults test compares the stack's boot script with: the renderer's plain output for the literals; with
 * `devices`, what the devices test compares it with (one NAME KEY line per device, sorted by name).
 */
const expectedBootScript = (devices?: Record<string, string>) =>
  renderBootScript(
    {
      volumeId: literals.volumeId,
      backupSshPublicKey: literals.sshPublicKey,
      adminSshPublicKey: '',
      ...(devices && {
        devices: Object.keys(devices)
          .sort()
          .map((name) => `${name} ${devices[name]}`)
          .join('\n'),
      }),
    },
    {
      payload: 's3',
      payloadUrl: `https://${literals.payloadBucketDomain}/${payloadObjectKey(renderHostPayload().sha256)}`,
      payloadRegion: 'us-west-1',
    },
  );

/**
 * A stack directory with the (possibly changed) JSON, the test files (name => text), the fixtures and, for run
 * blocks that test another stack (`module { source = "./NAME" }`), that stack's JSON in NAME/; initialised (with
 * the shared provider once it runs: init then installs no provider).
 */
function stackDir(
  name: string,
  json: Json,
  files: Record<string, string>,
  { fixture = expectedBootScript(), modules = {} }: { fixture?: string; modules?: Record<string, Json> } = {},
): PreparedStack {
  const dir = path.join(work, name);
  fs.mkdirSync(path.join(dir, 'tests/fixtures'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'cdk.tf.json'), JSON.stringify(json, null, 2));
  for (const [module, moduleJson] of Object.entries(modules)) {
    fs.mkdirSync(path.join(dir, module));
    fs.writeFileSync(path.join(dir, module, 'cdk.tf.json'), JSON.stringify(moduleJson, null, 2));
  }
  for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, 'tests', file), text);
  fs.writeFileSync(path.join(dir, 'tests/fixtures/boot-script.expected'), fixture);
  fs.writeFileSync(path.join(dir, 'tests/fixtures/boot-script-devices.expected'), expectedBootScript(literals.devices));
  const prepared = prepareStackDir(dir, { workDir: path.join(work, 'engine'), env: reattachEnv });
  expectOk(prepared.init());
  return prepared;
}

/** The test files as they are. */
const testFileTexts = (): Record<string, string> =>
  Object.fromEntries(testFiles.map((f) => [f, fs.readFileSync(path.join(TESTS_DIR, f), 'utf8')]));

/**
 * A test file's header (its comment, mock_provider and variables: everything before the first run block) and the
 * named run blocks, verbatim; with `module`, each run block tests the stack in ./module instead.
 */
function runsOf(file: string, names: string[], module?: string): string {
  const text = fs.readFileSync(path.join(TESTS_DIR, file), 'utf8');
  const blocks = names.map((name) => {
    const block = new RegExp(`^run "${name}" \\{\\n[^]*?^\\}\\n`, 'm').exec(text)?.[0];
    if (!block) throw new Error(`engine-tests/${file} has no run "${name}"`);
    return module ? block.replace(/\n/, `\n  module {\n    source = "./${module}"\n  }\n`) : block;
  });
  return [text.slice(0, text.search(/^run "/m)), ...blocks].join('\n');
}

interface ServedProvider {
  /** TF_REATTACH_PROVIDERS: the running provider under both registries' addresses. */
  reattach: string;
  stop(): Promise<void>;
}

/** The hashicorp/aws provider that `init` installed in a stack directory (under either registry's address). */
function installedProvider(dir: string): string {
  for (const address of AWS_PROVIDER_ADDRESSES) {
    const base = path.join(dir, '.terraform/providers', address);
    if (!fs.existsSync(base)) continue;
    for (const version of fs.readdirSync(base)) {
      for (const platform of fs.readdirSync(path.join(base, version))) {
        const file = fs
          .readdirSync(path.join(base, version, platform))
          .find((f) => f.startsWith('terraform-provider-aws'));
        if (file) return path.join(base, version, platform, file);
      }
    }
  }
  throw new Error(`init installed no hashicorp/aws provider in ${dir}/.terraform/providers`);
}

/**
 * Starts the provider once, in its debug mode (`-debug`: it prints the TF_REATTACH_PROVIDERS value that makes
 * the engines use this process instead of starting their own, and runs until interrupted). A shell stands between:
 * `stop` closes the shell's stdin and the shell interrupts the provider, and so does the end of this process.
 */
async function serveProvider(binary: string, log: string): Promise<ServedProvider> {
  const shell = spawn(
    '/bin/sh',
    ['-c', '"$0" -debug >"$1" 2>&1 & p=$!; read -r _; kill -INT "$p"; wait "$p"', binary, log],
    {
      stdio: ['pipe', 'ignore', 'ignore'],
      env: { ...process.env, ...ENGINE_GO_ENV },
    },
  );
  const exited = new Promise<void>((resolve) => shell.once('exit', () => resolve()));
  shell.stdin.on('error', () => {}); // (a shell that has already ended: nothing to stop)
  const stop = async () => {
    shell.stdin.end();
    await exited;
  };
  const deadline = Date.now() + 300_000;
  for (;;) {
    const printed = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
    const m = /TF_REATTACH_PROVIDERS='(\{.*\})'/.exec(printed);
    if (m) {
      const config = Object.values(JSON.parse(m[1]) as Record<string, unknown>)[0];
      return { reattach: JSON.stringify(Object.fromEntries(AWS_PROVIDER_ADDRESSES.map((a) => [a, config]))), stop };
    }
    if (Date.now() > deadline || shell.exitCode !== null) {
      await stop();
      throw new Error(`${binary} -debug printed no TF_REATTACH_PROVIDERS:\n${printed}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function expectOk(r: EngineResult) {
  if (r.status !== 0) throw new Error(`${r.command} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
}

/**
 * The JSON the engine tests apply: identical to the synthesized one except that the data volume's
 * prevent_destroy is off. `terraform test` destroys what it applied when a file ends, and before Terraform 1.14
 * (hashicorp/terraform#34960, fixed by #37364) a prevent_destroy resource makes that teardown fail. The
 * 'prevent_destroy holds' test below runs the unchanged JSON and shows the engine refusing that destroy.
 */
function withoutPreventDestroy(json: Json): Json {
  const copy = structuredClone(json);
  expect(copy.resource.aws_ebs_volume.backup_data.lifecycle).toMatchObject({ prevent_destroy: true });
  delete copy.resource.aws_ebs_volume.backup_data.lifecycle.prevent_destroy;
  return copy;
}

let stack: PreparedStack;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'btrbk-engine-'));
  const app = new App({ outdir: path.join(work, 'cdktf.out') });
  new BackupTargetStack(app, STACK_NAME);
  app.synth();
  synthesized = JSON.parse(fs.readFileSync(path.join(work, 'cdktf.out/stacks', STACK_NAME, 'cdk.tf.json'), 'utf8'));
  // The first init installs the provider from the mirror; that binary then serves every engine run.
  const first = stackDir('testable', withoutPreventDestroy(synthesized), testFileTexts());
  provider = await serveProvider(installedProvider(path.join(work, 'testable')), path.join(work, 'provider.log'));
  reattachEnv = { ...process.env, ...ENGINE_GO_ENV, TF_REATTACH_PROVIDERS: provider.reattach };
  stack = prepareStackDir(path.join(work, 'testable'), { workDir: path.join(work, 'engine'), env: reattachEnv });
  expect(stack.engine).toEqual(first.engine);
});

afterAll(async () => {
  await provider?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('engine checks (real provider schema, mock provider, offline)', () => {
  let suite: EngineResult;

  beforeAll(() => {
    suite = engineTest(stack);
  });

  test('the engine and the provider mirror are found; one provider process serves the engine runs', () => {
    expect(['tofu', 'terraform']).toContain(stack.engine.name);
    expect(stack.mirror).toBeTruthy();
    expect(stack.env.TF_CLI_CONFIG_FILE).toBe(path.join(work, 'engine/engine.tfrc'));
    expect(Object.keys(JSON.parse(stack.env.TF_REATTACH_PROVIDERS ?? '{}'))).toEqual(AWS_PROVIDER_ADDRESSES);
  });

  test('validate accepts the synthesized JSON', () => {
    const r = stack.validate();
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('The configuration is valid');
    expect(r.status).toBe(0);
  });

  test('the literals in the test files agree with fixtures/literals.json', () => {
    const all = testFiles.map((f) => fs.readFileSync(path.join(TESTS_DIR, f), 'utf8')).join('\n');
    for (const value of [
      literals.volumeId,
      literals.publicIp,
      literals.sshPublicKey,
      literals.adminSshPublicKey,
      literals.payloadBucketDomain,
      ...Object.keys(literals.devices),
      ...Object.values(literals.devices),
    ]) {
      expect(all).toContain(`"${value}"`);
    }
  });

  test.each(testFiles)('%s passes, every run block reported as passed', (file) => {
    const { files, runs } = parseTestOutput(suite.stdout);
    const mine = declaredRuns.filter((r) => r.startsWith(`tests/${file}/`));
    expect(mine.length).toBeGreaterThan(0);
    expect({ file, status: files[`tests/${file}`], stderr: suite.stderr }).toEqual({
      file,
      status: 'pass',
      stderr: suite.stderr,
    });
    expect(Object.fromEntries(mine.map((r) => [r, runs[r]]))).toEqual(Object.fromEntries(mine.map((r) => [r, 'pass'])));
  });

  test('the whole suite exits 0', () => {
    expect(suite.status).toBe(0);
  });
});

/**
 * Two of bad-variables' device refusals again without expect_failures, so the engine prints their messages: a name
 * the host refuses (the variable's validation), after devices.tftest.hcl's apply, and 200 devices past EC2's 16 KB
 * (the instance's size precondition, which counts the devices), after defaults.tftest.hcl's (a refused plan ends
 * its file: the runs after it are skipped).
 */
const DEVICE_REFUSALS_SAID: Record<string, string> = {
  'devices.tftest.hcl': `
run "bad_device_name_said" {
  command = plan
  variables {
    devices = { "a..b" = "${literals.devices.bob}" }
  }
}
`,
  'defaults.tftest.hcl': `
run "too_many_devices_said" {
  command = plan
  variables {
    devices = { for i in range(200) : "device-\${i}" => "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI\${substr(base64sha256(tostring(i)), 0, 43)} owner-\${i}@example" }
  }
}
`,
};

const TYPE_FILE = 'instance-type-change.tftest.hcl';
const UNCHANGED_FILE = 'ami-update-unchanged.tftest.hcl';

describe('the engine tests can fail (negative controls)', () => {
  // One engine run for all the controls, each with only the run blocks it needs, taken verbatim from the test
  // files (with their mock_provider and variables). With one broken JSON: a fixture one character off, the JSON
  // without ignore_changes = [ami], the data volume without its restore_snapshot_id postcondition and without
  // availability_zone in its ignore_changes, and the zone test's refused type without its expect_failures (so the
  // engine prints the precondition's message). Run blocks that test another stack: the unchanged JSON
  // (prevent_destroy), and one that replaces the instance when instance_type changes.
  const notOffered = 'type_not_offered_in_the_deployed_zone_refused';
  let controls: EngineResult;
  beforeAll(() => {
    const good = expectedBootScript();
    const n = Math.floor(good.length / 2);
    const fixture = good.slice(0, n) + (good[n] === 'x' ? 'y' : 'x') + good.slice(n + 1);
    expect(fixture).not.toBe(good);
    const json = withoutPreventDestroy(synthesized);
    delete json.resource.aws_instance.backup_host.lifecycle.ignore_changes;
    delete json.resource.aws_ebs_volume.backup_data.lifecycle.postcondition;
    expect(json.resource.aws_ebs_volume.backup_data.lifecycle.ignore_changes).toEqual([
      'snapshot_id',
      'availability_zone',
    ]);
    json.resource.aws_ebs_volume.backup_data.lifecycle.ignore_changes = ['snapshot_id'];
    const zone = runsOf('zone-pinning.tftest.hcl', [
      'first_deploy',
      'a_new_first_zone_moves_nothing',
      'an_offering_change_and_the_fast_lane_move_nothing',
      notOffered,
    ]);
    const zoneSaid = zone.replace(
      new RegExp(`(run "${notOffered}" \\{[^]*?)\\n  expect_failures = \\[aws_instance\\.backup_host\\]`),
      '$1',
    );
    expect(zoneSaid).not.toBe(zone);
    // The type control's stack: a change of instance_type replaces the instance (replace_triggered_by on a
    // terraform_data holding the type). Its volume has no lifecycle (no prevent_destroy: the teardown works).
    const replacesOnType = structuredClone(synthesized);
    delete replacesOnType.resource.aws_ebs_volume.backup_data.lifecycle;
    replacesOnType.resource.terraform_data = {
      ...replacesOnType.resource.terraform_data,
      type: { input: '${var.instance_type}' },
    };
    replacesOnType.resource.aws_instance.backup_host.lifecycle.replace_triggered_by = [
      ...(replacesOnType.resource.aws_instance.backup_host.lifecycle.replace_triggered_by ?? []),
      'terraform_data.type',
    ];
    const files = {
      'defaults.tftest.hcl':
        runsOf('defaults.tftest.hcl', ['apply_with_defaults']) + DEVICE_REFUSALS_SAID['defaults.tftest.hcl'],
      'devices.tftest.hcl':
        runsOf('devices.tftest.hcl', ['apply_with_two_devices']) + DEVICE_REFUSALS_SAID['devices.tftest.hcl'],
      'ami-update.tftest.hcl': runsOf('ami-update.tftest.hcl', ['first_apply', 'newer_ami_keeps_instance']),
      'protection.tftest.hcl': runsOf('protection.tftest.hcl', [
        'defaults_snapshot_recycle_alarm',
        'restore_snapshot_on_existing_deployment_refused',
      ]),
      'zone-pinning.tftest.hcl': zoneSaid,
      [UNCHANGED_FILE]: runsOf('ami-update.tftest.hcl', ['first_apply', 'newer_ami_keeps_instance'], 'unchanged'),
      [TYPE_FILE]: runsOf(TYPE_FILE, ['chosen_type', 'fast_lane_type'], 'replaces-on-type'),
    };
    controls = engineTest(
      stackDir('controls', json, files, {
        fixture,
        modules: { unchanged: synthesized, 'replaces-on-type': replacesOnType },
      }),
    );
  });

  test('the engine run with the controls fails, in each control file', () => {
    expect(controls.status).not.toBe(0);
    const { files } = parseTestOutput(controls.stdout);
    expect(files).toEqual({
      'tests/ami-update-unchanged.tftest.hcl': 'fail',
      'tests/ami-update.tftest.hcl': 'fail',
      'tests/defaults.tftest.hcl': 'fail',
      'tests/devices.tftest.hcl': 'fail',
      'tests/instance-type-change.tftest.hcl': 'fail',
      'tests/protection.tftest.hcl': 'fail',
      'tests/zone-pinning.tftest.hcl': 'fail',
    });
  });

  test('a boot script differing by one character fails the user-data equality assertions', () => {
    expect(parseTestOutput(controls.stdout).runs['tests/defaults.tftest.hcl/apply_with_defaults']).toBe('fail');
    expect(controls.stderr).toContain('differs from renderBootScript()');
    expect(controls.stderr).toContain('is not gzip+base64 of the rendered boot script');
  });

  test('device refusals say what is wrong: a bad name, and too many devices for 16 KB with their count', () => {
    const { runs } = parseTestOutput(controls.stdout);
    expect(runs['tests/devices.tftest.hcl/apply_with_two_devices']).toBe('pass');
    expect(runs['tests/devices.tftest.hcl/bad_device_name_said']).toBe('fail');
    expect(runs['tests/defaults.tftest.hcl/too_many_devices_said']).toBe('fail');
    const said = controls.stderr.replace(/\s+/g, ' ');
    expect(said).toContain(VARIABLES.devices.rules[0].message);
    expect(said).toContain(
      "the instance's user data would be over EC2's 16 KB (gzipped) with 200 devices: each device takes about 75 bytes of it",
    );
  });

  test('without ignore_changes = [ami], a newer image would change the instance', () => {
    expect(parseTestOutput(controls.stdout).runs['tests/ami-update.tftest.hcl/newer_ami_keeps_instance']).toBe('fail');
    expect(controls.stderr).toContain('a newer AMI replaced the instance');
  });

  test('without the postcondition, restore_snapshot_id on an existing deployment would be ignored silently', () => {
    expect(
      parseTestOutput(controls.stdout).runs[
        'tests/protection.tftest.hcl/restore_snapshot_on_existing_deployment_refused'
      ],
    ).toBe('fail');
    expect(parseTestOutput(controls.stdout).runs['tests/protection.tftest.hcl/defaults_snapshot_recycle_alarm']).toBe(
      'pass',
    );
  });

  test("without availability_zone in the volume's ignore_changes, a new first zone or type would move the volume and the instance", () => {
    const { runs } = parseTestOutput(controls.stdout);
    expect(runs['tests/zone-pinning.tftest.hcl/first_deploy']).toBe('pass');
    expect(runs['tests/zone-pinning.tftest.hcl/a_new_first_zone_moves_nothing']).toBe('fail');
    expect(runs['tests/zone-pinning.tftest.hcl/an_offering_change_and_the_fast_lane_move_nothing']).toBe('fail');
    expect(controls.stderr).toContain('a new first zone moved (replaced) the data volume');
    expect(controls.stderr).toContain('a new first zone moved (replaced) the instance');
    expect(controls.stderr).toContain("the fast lane's type change moved (replaced) the instance");
  });

  test('a type EC2 does not offer in the deployed zone is refused at plan, with the message that says what to do', () => {
    expect(parseTestOutput(controls.stdout).runs[`tests/zone-pinning.tftest.hcl/${notOffered}`]).toBe('fail');
    // (the engine wraps the message at 76 columns)
    const said = controls.stderr.replace(/\s+/g, ' ');
    expect(said).toContain('Resource precondition failed');
    expect(said).toContain(
      "instance_type t3a.large is not offered in us-west-1b, the availability zone of the data volume (a volume cannot move to another zone, so the instance must be in the volume's). Zones of us-west-1 that offer t3a.large: us-west-1a. Choose an instance_type offered in us-west-1b (aws ec2 describe-instance-type-offerings --region us-west-1 --location-type availability-zone --filters Name=location,Values=us-west-1b)",
    );
  });

  test('prevent_destroy holds: with the unchanged JSON the engine refuses to destroy the data volume', () => {
    const { runs } = parseTestOutput(controls.stdout);
    expect(runs[`tests/${UNCHANGED_FILE}/first_apply`]).toBe('pass');
    expect(runs[`tests/${UNCHANGED_FILE}/newer_ami_keeps_instance`]).toBe('pass');
    // The teardown (a destroy) is refused because of the data volume's prevent_destroy, and only for it (the other
    // stacks here have none). If an engine overrides prevent_destroy during test cleanup (Terraform >= 1.14), this
    // check must move to a plan.
    const said = controls.stderr.replace(/\s+/g, ' ');
    expect(said).toContain(
      `error destroying resources created while executing tests/${UNCHANGED_FILE}/newer_ami_keeps_instance`,
    );
    expect(controls.stderr).toMatch(/Resource aws_ebs_volume\.backup_data has lifecycle\.prevent_destroy set/);
    expect(controls.stderr.match(/has lifecycle\.prevent_destroy set/g)).toHaveLength(1);
  });

  // The control of instance-type-change.tftest.hcl (the first-backup fast lane's in-place type change): on a stack
  // that WOULD replace the instance when instance_type changes, the same run blocks fail, naming the replaced
  // instance and the moved address.
  test('a stack that replaces the instance on a type change fails the in-place test', () => {
    const { runs } = parseTestOutput(controls.stdout);
    expect(runs[`tests/${TYPE_FILE}/chosen_type`]).toBe('pass');
    expect(runs[`tests/${TYPE_FILE}/fast_lane_type`]).toBe('fail');
    expect(controls.stderr).toContain('the type change replaced the instance');
    expect(controls.stderr).toContain('the type change moved the Elastic IP');
  });
});
