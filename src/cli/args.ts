// Parsers of CLI option values, one per meaning, shared by every command.

import { InvalidArgumentError } from 'commander';

/** An integer ≥ 1 (counts, sizes, threads). */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`'${value}' is not a positive integer`);
  return n;
}

/** An integer ≥ 0 (a timeout where 0 means "do not wait", a version the daemon checks itself). */
export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`'${value}' is not a non-negative integer`);
  return n;
}

/** A number > 0 (a rate). */
export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`'${value}' is not a positive number`);
  return n;
}

/** A number ≥ 0 (a margin, where 0 means "no slack"). */
export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`'${value}' is not a non-negative number`);
  return n;
}
