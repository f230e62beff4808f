/**
 * Version of this front end; must equal package.json's "version" (a Jest test
 * checks), which is also the server extension's `__version__`.
 */
export const VERSION = '0.1.0';

/**
 * Whether a server extension version matches this front end: the same release,
 * ignoring local/dev build suffixes ("0.1.0.dev0" and "0.1.0" match).
 */
export function versionsMatch(
  server: string,
  front: string = VERSION
): boolean {
  const norm = (v: string) => {
    const m = v.trim().match(/^v?(\d+(?:\.\d+)*)/);
    return m ? m[1] : v.trim();
  };
  return norm(server) === norm(front);
}
