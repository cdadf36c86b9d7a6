// The error every room throws when a person can act on it: what went wrong, and in `hint` what to do.
// The CLI prints it as one line and its hint, without a stack trace, and exits 1. It lives here, in
// the room every other imports and that imports nobody, so that the local stack (StackError) and the
// pipelines (a store that does not answer at start, a table missing) share it without one of them
// importing the other.
export class ActionableError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = "ActionableError";
  }
}
