// `npm run demo` leaves the working tree clean: a run writes into demo/out/ (ignored by git),
// and only `--publish` rewrites the committed demo/*.png|svg|html. A short real run: the
// daemon, the drifting stream and the three static baselines made with the real CLI.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.js';

const FILES = ['report.html', 'accuracy.svg', 'accuracy.png'];
const digest = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('npm run demo', () => {
  it('writes into the ignored demo/out/ and leaves the committed copies alone', () => {
    const committed = FILES.map((f) => digest(join(repoRoot, 'demo', f)));
    const started = Date.now();
    execFileSync(join(repoRoot, 'node_modules', '.bin', 'tsx'), [join(repoRoot, 'scripts', 'demo.ts'), '--requests', '320', '--window', '160'], { cwd: repoRoot, stdio: 'ignore', timeout: 240_000 });
    expect(FILES.map((f) => digest(join(repoRoot, 'demo', f)))).toEqual(committed);
    for (const f of FILES) expect(statSync(join(repoRoot, 'demo', 'out', f)).mtimeMs).toBeGreaterThanOrEqual(started - 1000);
    const html = readFileSync(join(repoRoot, 'demo', 'out', 'report.html'), 'utf8');
    for (const label of ['static, clean daytime data', 'static data-free, [0,1] range', 'static, first live (dusk) calibration']) expect(html).toContain(label);
    // git ignores what a run writes (check-ignore exits non-zero, and throws, otherwise).
    expect(execFileSync('git', ['check-ignore', ...FILES.map((f) => join('demo', 'out', f))], { cwd: repoRoot, encoding: 'utf8' }).trim().split('\n')).toHaveLength(3);
  }, 300_000);
});
