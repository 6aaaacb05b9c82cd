/** An error the user can fix from its message alone: `main` prints it without a stack and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
