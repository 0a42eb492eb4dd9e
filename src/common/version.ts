// calibd's own version, read from package.json (src/ and dist/ both sit one level below it).
import { readFileSync } from 'node:fs';

let cached: string | undefined;

export function calibdVersion(): string {
  if (!cached) {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    cached = pkg.version;
  }
  return cached;
}
