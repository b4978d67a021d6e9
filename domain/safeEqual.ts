// Comparing a secret a client sent with ours must take the same time however many leading
// characters match, or the time of each answer tells an attacker how close a guess was.
import crypto from 'node:crypto';

/**
 * Whether `given` equals `expected`, in time that depends on neither. Both are hashed first, so
 * the comparison is over equal lengths and does not reveal the secret's length either.
 */
export function safeEqual(given: string, expected: string): boolean {
  const digest = (s: string) => crypto.createHash('sha256').update(s, 'utf8').digest();
  // `===` only runs once the digests match; it tells apart strings UTF-8 encodes alike (lone
  // surrogates all become U+FFFD).
  return crypto.timingSafeEqual(digest(given), digest(expected)) && given === expected;
}
