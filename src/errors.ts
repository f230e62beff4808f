/**
 * The one way the front end turns a thrown value into the sentence a user reads: the
 * server's `message` (requestAPI puts it on the error), else the value as text.
 */
export function errorMessage(error: unknown): string {
  if (error && typeof error === 'object' && 'message' in error) {
    const message = String((error as { message: unknown }).message);
    if (message) {
      return message;
    }
  }
  return String(error);
}
