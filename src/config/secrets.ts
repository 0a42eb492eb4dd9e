// Which config keys hold secrets, read from the schema itself: a key is secret when its
// schema carries `.meta({ secret: true })` (see `secret()` in schema.ts). Everything that
// renders a config (MQTT config/get, errors, logs) redacts through here, so a secret key
// added to the schema is hidden everywhere without a list to keep in step.

import { z } from 'zod';

export const REDACTED = '***';

/** Marks a schema as holding a secret. */
export function secret<T extends z.ZodType>(schema: T): T {
  return schema.meta({ secret: true }) as T;
}

/** Dotted paths of the secret keys under `schema`. */
export function secretPaths(schema: z.ZodType, prefix = ''): string[] {
  if (z.globalRegistry.get(schema)?.secret === true) return [prefix];
  const def = schema._zod.def as unknown as { type: string; shape?: Record<string, z.ZodType>; innerType?: z.ZodType; in?: z.ZodType };
  if (def.type === 'object' && def.shape) {
    return Object.entries(def.shape).flatMap(([k, s]) => secretPaths(s, prefix ? `${prefix}.${k}` : k));
  }
  const inner = def.innerType ?? (def.type === 'pipe' ? def.in : undefined);
  return inner ? secretPaths(inner, prefix) : [];
}

/** True when `key` names a secret, or a section holding one. */
export function touchesSecret(key: string, secrets: readonly string[]): boolean {
  return secrets.some((s) => s === key || s.startsWith(`${key}.`));
}

/** A deep copy of `config` with every secret that is set replaced by REDACTED. */
export function redactSecrets<T>(config: T, secrets: readonly string[]): T {
  const out = structuredClone(config) as Record<string, unknown>;
  for (const path of secrets) {
    const parts = path.split('.');
    let cur: unknown = out;
    for (const p of parts.slice(0, -1)) cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[p] : undefined;
    const last = parts[parts.length - 1];
    if (cur !== null && typeof cur === 'object' && (cur as Record<string, unknown>)[last] !== undefined) (cur as Record<string, unknown>)[last] = REDACTED;
  }
  return out as T;
}
