/**
 * An expiry typed in days, as the API's `expires_in_seconds`: empty is
 * "never" (absent); a number becomes whole seconds; anything else goes as
 * typed, so the API says what is wrong with it at the field.
 */
export function expiresIn(days: string): { expires_in_seconds?: number } {
  const text = days.trim();
  if (text === '') return {};
  const n = Number(text);
  // Not a number: JSON would turn NaN into null ("never"), so send the text and let the API refuse it.
  return { expires_in_seconds: Number.isFinite(n) ? Math.round(n * 86400) : (text as unknown as number) };
}
