/** Small assertion helpers shared by unit tests. */
import { expect } from "vitest";
import { ValidationError } from "../../src/model/errors.js";

/** Runs `fn`, expecting a ValidationError; returns it. */
export function validationErrorOf(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  return expect.unreachable("expected a ValidationError");
}
