// Runs the built `calibd` CLI in this process and reports its peak resident set size on
// stderr, so the benchmark can compare memory across sample counts.
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const { run } = await import(main);
const code = await run(process.argv.slice(2));
process.stderr.write(`maxRSS=${process.resourceUsage().maxRSS}\n`);
process.exitCode = code;
