/**
 * Errors a user can fix (bad flags, bad files, bad shapes). The CLI prints their message as one
 * line and exits 2; anything else is an internal error (exit 1).
 */
export class InputError extends Error {
  override name = 'InputError';
}

export function isInputError(e: unknown): e is InputError {
  return e instanceof InputError;
}
