#!/usr/bin/env node
// Entry point of the `calibd` command. The TypeScript sources are compiled to dist/ by
// `npm run build`, which npm runs on install (the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  console.error('calibd: dist/ is missing; run `npm run build` (npm install runs it for you)');
  process.exit(2);
}
const { run } = await import(main);
process.exitCode = await run(process.argv.slice(2));
