// backup.mjs ls, find and diff (laptop/browse.ts): the manifest's --list lines, escaping, the send-stream parser and
// the diff model on crafted streams (the real ones: __tests__/integration/browse.local-target.test.ts), the find
// carry-over, and the text and JSON forms.
import {
  carryHits,
  changeJson,
  DiffModel,
  diffStream,
  entryJson,
  escapeBytes,
  findJson,
  formatChange,
  formatEntry,
  formatFind,
  globToRegExp,
  modeString,
  parseListLine,
  pickSubvolume,
  SendStreamParser,
  showPath,
  spans,
  underArg,
  unescapeBytes,
  type Change,
  type FindHit,
} from '../../scripts/lib/laptop/browse.js';
import type { Manifest } from '../../scripts/lib/laptop/install.js';
import { Attr, Cmd, SendStream } from '../support/send-stream.js';

describe('escaping', () => {
  test('the manifest form: bytes outside 0x21-0x7E and % as %XX, round trip', () => {
    const raw = Buffer.from('a b%c\u00e9\n\u0000', 'utf8');
    expect(escapeBytes(raw)).toBe('a%20b%25c%C3%A9%0A%00');
    expect(unescapeBytes(escapeBytes(raw)).equals(raw)).toBe(true);
    expect(escapeBytes(Buffer.from('-'))).toBe('%2D');
  });

  test("--under's form: only [A-Za-z0-9_@+.-] stays, / separates", () => {
    expect(underArg("me/My Docs/caf\u00e9/it's=1,2:3")).toBe('me/My%20Docs/caf%C3%A9/it%27s%3D1%2C2%3A3');
    expect(underArg('.config/a-b_c@d+e')).toBe('.config/a-b_c@d+e');
  });

  test('showPath: text when it is UTF-8 without control characters, else as escaped', () => {
    expect(showPath('me/caf%C3%A9%20x')).toBe('me/caf\u00e9 x');
    expect(showPath('bad%FF')).toBe('bad%FF');
    expect(showPath('new%0Aline')).toBe('new%0Aline');
    expect(showPath('plain')).toBe('plain');
  });
});

describe('ls: btrbk-manifest --list lines', () => {
  test('an entry, the header, the end line; a line of another shape throws', () => {
    expect(parseListLine('# btrbk-manifest 1 list')).toBeNull();
    expect(parseListLine('me/a%20b\tf\t12\t0644\t1000:1000\t1764950400.000000001\t-\t-')).toEqual({
      path: 'me/a%20b',
      type: 'file',
      size: 12,
      mode: '0644',
      uid: 1000,
      gid: 1000,
      mtime: '1764950400.000000001',
      target: null,
    });
    expect(parseListLine('me/l\tl\t4\t0777\t0:0\t1764950400.5\t/etc\t-')).toMatchObject({
      type: 'symlink',
      target: '/etc',
    });
    expect(parseListLine('# end entries=3 files=1 bytes=0')).toEqual({ end: { entries: 3, files: 1 } });
    expect(() => parseListLine('me/x\tz\t1\t0644\t0:0\t1.0\t-\t-')).toThrow(/not a line/);
    expect(() => parseListLine('rejected: nope')).toThrow(/not a line/);
  });

  test('ls -l form (times in UTC), with the subvolume as prefix; JSON with the name shown and escaped', () => {
    const e = parseListLine('me/caf%C3%A9\tf\t12\t4755\t1000:100\t1764950400.0\t-\t-');
    if (!e || 'end' in e) throw new Error('no entry');
    expect(formatEntry(e, '/home')).toBe('-rwsr-xr-x 1000:100              12 2025-12-05 16:00  /home/me/caf\u00e9');
    const dir = parseListLine('me\td\t-\t1777\t0:0\t1764950400.0\t-\t-');
    if (!dir || 'end' in dir) throw new Error('no entry');
    expect(formatEntry(dir, '/home')).toMatch(/^drwxrwxrwt 0:0 +- 2025-12-05 16:00 {2}\/home\/me\/$/);
    expect(entryJson(e, '/home')).toEqual({
      path: '/home/me/caf\u00e9',
      escaped: 'me/caf%C3%A9',
      type: 'file',
      size: 12,
      mode: '4755',
      uid: 1000,
      gid: 100,
      mtime: '2025-12-05T16:00:00.000Z',
    });
    expect(modeString('file', '2750')).toBe('-rwxr-s---');
    expect(modeString('dir', '1754')).toBe('drwxr-xr-T');
  });
});

describe('diff: send streams', () => {
  const utimes = (s: SendStream, p: string) => s.command(Cmd.UTIMES, [[Attr.PATH, p]]);

  test('the parser takes a stream in chunks of any size, paths as raw bytes', () => {
    const s = new SendStream()
      .command(Cmd.SNAPSHOT, [[Attr.PATH, 'home.2']])
      .mkfile('o257-1-0')
      .rename('o257-1-0', 'caf\u00e9 x')
      .command(Cmd.END, []);
    const bytes = s.toBuffer();
    const p = new SendStreamParser();
    const cmds = [];
    for (let i = 0; i < bytes.length; i += 3) cmds.push(...p.push(bytes.subarray(i, i + 3)));
    expect(cmds.map((c) => [c.cmd, c.path, c.to])).toEqual([
      [Cmd.SNAPSHOT, 'home.2', null],
      [Cmd.MKFILE, 'o257-1-0', null],
      [Cmd.RENAME, 'o257-1-0', 'caf%C3%A9%20x'],
      [Cmd.END, null, null],
    ]);
    expect(p.ended).toBe(true);
    expect(() => new SendStreamParser().push(Buffer.from('not-a-stream-at-all'))).toThrow(/not a btrfs send stream/);
  });

  test('new entries (made under a temporary name), removals, renames of files and directories, content and metadata', () => {
    const s = new SendStream().command(Cmd.SNAPSHOT, [[Attr.PATH, 'home.2']]);
    s.mkdir('o300-5-0').rename('o300-5-0', 'me/new');
    s.mkfile('o301-5-0').rename('o301-5-0', 'me/new/a.txt');
    s.command(Cmd.UPDATE_EXTENT, [[Attr.PATH, 'me/new/a.txt']]);
    s.unlink('me/old/x').unlink('me/old/y').rmdir('me/old');
    s.rename('me/docs', 'me/papers'); // a directory: its children follow without a line
    s.command(Cmd.UPDATE_EXTENT, [[Attr.PATH, 'me/papers/thesis.tex']]); // a child's content, under the new name
    s.command(Cmd.TRUNCATE, [[Attr.PATH, 'me/notes.txt']]);
    s.command(Cmd.CHMOD, [[Attr.PATH, 'me/run.sh']]);
    utimes(s, 'me/run.sh');
    s.command(Cmd.CHOWN, [[Attr.PATH, 'me/mine']]);
    utimes(s, 'me/touched'); // times alone on an entry that holds nothing else: shown
    utimes(s, 'me').command(Cmd.UTIMES, [[Attr.PATH, '']]); // a directory's times with its changes: left out
    s.link('me/b.txt', 'me/a-old.txt').unlink('me/a-old.txt'); // a file's rename, as btrfs sends it
    s.link('me/hard', 'me/keep.txt'); // a new hard link: an addition
    s.command(Cmd.END, []);
    expect(diffStream(s.toBuffer()).map((c) => formatChange(c, '/home'))).toEqual([
      'R /home/me/a-old.txt -> /home/me/b.txt',
      '+ /home/me/hard',
      'U /home/me/mine (owner)',
      '+ /home/me/new/',
      '+ /home/me/new/a.txt',
      'M /home/me/notes.txt',
      '- /home/me/old/',
      '- /home/me/old/x',
      '- /home/me/old/y',
      'R /home/me/docs -> /home/me/papers',
      'R /home/me/docs/thesis.tex -> /home/me/papers/thesis.tex (content changed)',
      'U /home/me/run.sh (mode)',
      'U /home/me/touched (times)',
    ]);
  });

  test('names swapped through a temporary name stay two renames; a name reused after removal is an addition', () => {
    const s = new SendStream().command(Cmd.SNAPSHOT, [[Attr.PATH, 'h.2']]);
    s.rename('a', 'o400-1-0').rename('b', 'a').rename('o400-1-0', 'b');
    s.unlink('c').mkfile('o500-2-0').rename('o500-2-0', 'c');
    s.command(Cmd.END, []);
    const m = new DiffModel();
    for (const c of new SendStreamParser().push(s.toBuffer())) m.apply(c);
    expect(m.changes().map((c) => formatChange(c))).toEqual(['R b -> a', 'R a -> b', '+ c', '- c']);
    expect(m.subvolume).toBe('h.2');
  });

  test('JSON of each kind', () => {
    const cs: Change[] = [
      { kind: 'added', path: 'a%20b', type: 'file' },
      { kind: 'renamed', from: 'x', path: 'y', content: true, meta: [] },
      { kind: 'modified', path: 'm', content: false, meta: ['mode'] },
    ];
    expect(cs.map((c) => changeJson(c, '/home'))).toEqual([
      { change: 'added', path: '/home/a b', type: 'file' },
      { change: 'renamed', path: '/home/y', from: '/home/x', content: true, meta: [] },
      { change: 'modified', path: '/home/m', content: false, meta: ['mode'] },
    ]);
  });
});

describe('find', () => {
  test('globs on a name: *, ?, [...], [!...]; everything else literal', () => {
    const g = globToRegExp('thesis*.t?x');
    expect(['thesis.tex', 'thesis-v2.tux'].every((n) => g.test(n))).toBe(true);
    expect(['thesis.tex.bak', 'xthesis.tex', 'thesis.teex'].some((n) => g.test(n))).toBe(false);
    expect(globToRegExp('[abc]1').test('b1')).toBe(true);
    expect(globToRegExp('[!abc]1').test('b1')).toBe(false);
    expect(globToRegExp('a+b(c).$').test('a+b(c).$')).toBe(true);
    expect(globToRegExp('[oops').test('[oops')).toBe(true);
  });

  const hit = (p: string, i: number): FindHit => ({ path: p, earlierPaths: [], in: [i], changedIn: [] });
  const tex = (name: string) => /\.tex$/.test(name);

  test('carried through changes: removed, renamed (with its directory), changed, added, renamed to a name that no longer matches', () => {
    const hits = new Map([
      ['a/t.tex', hit('a/t.tex', 0)],
      ['d/u.tex', hit('d/u.tex', 0)],
      ['gone.tex', hit('gone.tex', 0)],
      ['m.tex', hit('m.tex', 0)],
      ['away.tex', hit('away.tex', 0)],
    ]);
    const changes: Change[] = [
      { kind: 'removed', path: 'gone.tex', type: 'entry' },
      { kind: 'renamed', from: 'd', path: 'docs', content: false, meta: [] },
      { kind: 'modified', path: 'a/t.tex', content: true, meta: [] },
      { kind: 'modified', path: 'm.tex', content: false, meta: ['times'] },
      { kind: 'renamed', from: 'away.tex', path: 'away.txt', content: false, meta: [] },
      { kind: 'added', path: 'new.tex', type: 'file' },
      { kind: 'added', path: 'new.txt', type: 'file' },
      { kind: 'renamed', from: 'b.txt', path: 'b.tex', content: false, meta: [] },
    ];
    const next = carryHits(hits, changes, 1, tex);
    expect([...next.values()].map((h) => [h.path, h.in, h.changedIn, h.earlierPaths])).toEqual([
      ['a/t.tex', [0, 1], [1], []],
      ['docs/u.tex', [0, 1], [], ['d/u.tex']],
      ['m.tex', [0, 1], [], []],
      ['new.tex', [1], [], []],
      ['b.tex', [1], [], []],
    ]);
  });

  const dated = (ts: string) => ({ name: `home.${ts}`, path: `/b/home.${ts}`, time: new Date(0), timestamp: ts });
  const backups = ['20261201T0000', '20261202T0000', '20261203T0000', '20261204T0000'].map(dated);

  test('spans of consecutive backups; text and JSON', () => {
    expect(spans([0, 1, 3], backups)).toBe('20261201T0000 .. 20261202T0000, 20261204T0000');
    const r = {
      subvolume: '/home',
      pattern: '*.tex',
      backups,
      hits: [{ path: 'me/t%20x.tex', earlierPaths: ['old.tex'], in: [0, 1, 3], changedIn: [1] }],
    };
    expect(formatFind(r, '/home')).toBe(
      [
        '/home: 1 entry matches "*.tex" in 4 backup(s)',
        '  /home/me/t x.tex',
        '    in 3 of 4: 20261201T0000 .. 20261202T0000, 20261204T0000',
        '    changed in: 20261202T0000',
        '    earlier names: /home/old.tex',
        'restore one: npx zx scripts/backup.mjs restore --subvolume /home --at TIMESTAMP --path REL/PATH',
      ].join('\n'),
    );
    expect(findJson(r, '/home').hits).toEqual([
      {
        path: '/home/me/t x.tex',
        earlierPaths: ['/home/old.tex'],
        in: ['home.20261201T0000', 'home.20261202T0000', 'home.20261204T0000'],
        changedIn: ['home.20261202T0000'],
      },
    ]);
  });
});

describe('which subvolume a command means', () => {
  const m = { sources: [{ subvolume: '/home' }, { subvolume: '/home/me/vm' }, { subvolume: '/srv' }] } as Manifest;
  test('an absolute path: the protected subvolume it is in (the deepest); relative to --subvolume', () => {
    expect(pickSubvolume(m, { path: '/home/me/docs/' })).toEqual({ subvolume: '/home', rel: 'me/docs' });
    expect(pickSubvolume(m, { path: '/home/me/vm/disk.img' })).toEqual({ subvolume: '/home/me/vm', rel: 'disk.img' });
    expect(pickSubvolume(m, { path: '/srv' })).toEqual({ subvolume: '/srv', rel: '' });
    expect(pickSubvolume(m, { subvolume: '/srv', path: 'www' })).toEqual({ subvolume: '/srv', rel: 'www' });
    expect(pickSubvolume(null, { subvolume: '/home', path: '/home/me' })).toEqual({ subvolume: '/home', rel: 'me' });
    expect(pickSubvolume({ sources: [{ subvolume: '/home' }] } as Manifest, {})).toEqual({
      subvolume: '/home',
      rel: '',
    });
  });
  test('refused with the next step: a path in no protected subvolume, several to choose from, nothing installed', () => {
    expect(() => pickSubvolume(m, { path: '/etc/x' })).toThrow(/is in no protected subvolume/);
    expect(() => pickSubvolume(m, { path: 'me/docs' })).toThrow(/which subvolume/);
    expect(() => pickSubvolume(null, {})).toThrow(/nothing is installed/);
    expect(() => pickSubvolume(m, { subvolume: '/srv', path: '/home/x' })).toThrow(/is not in \/srv/);
  });
});
