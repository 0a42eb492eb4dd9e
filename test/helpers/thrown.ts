// The error a call throws, checked to be of the expected class: the test fails when the
// call returns or throws anything else. One helper for every "this input is refused" test.
import { expect } from 'vitest';

export function thrown<E extends Error>(kind: abstract new (...args: never[]) => E, fn: () => unknown): E {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(kind);
    return err as E;
  }
  throw new Error(`expected a ${kind.name}, but the call returned`);
}
