// node batch.mjs STEPS.json
// Runs several calibd commands and inference passes in ONE process, in order, stopping at the
// first failure. Each step is either
//   {"calibd": ["calibrate", "--model", …]}   the CLI's own run(argv), as bin/calibd.js calls it
//   {"infer": [MODEL, INPUTS.npy, OUT.npy]}   infer.mjs: first output per sample, batch 1
// Under emulation each Node start costs tens of seconds of module loading, so the arm64
// checks run their commands through this instead of one process per command.
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const steps = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { run } = await import(pathToFileURL(join(here, 'dist', 'cli', 'main.js')).href);
for (const step of steps) {
  const t0 = Date.now();
  if (step.calibd) {
    console.log(`$ calibd ${step.calibd.join(' ')}`);
    const code = await run(step.calibd);
    if (code !== 0) {
      console.error(`batch: calibd ${step.calibd[0]} exited ${code}`);
      process.exit(1);
    }
  } else if (step.infer) {
    // Its own process would cost another start-up; import it with fresh argv instead.
    process.argv = [process.argv[0], join(here, 'infer.mjs'), ...step.infer];
    await import(`${pathToFileURL(join(here, 'infer.mjs')).href}?${steps.indexOf(step)}`);
  } else {
    console.error(`batch: unknown step ${JSON.stringify(step)}`);
    process.exit(2);
  }
  console.log(`  (${((Date.now() - t0) / 1000).toFixed(1)} s on ${process.arch}${process.arch === "arm64" ? " under emulation: this timing means nothing" : ""})`);
}
