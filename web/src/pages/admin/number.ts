/** A number field: empty is "not set"; a number as a number; anything else as typed, so the API says what is wrong with it at the field. */
export function numberOrTyped(text: string): number | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  const n = Number(t);
  // JSON would turn NaN into null: send the text and let the API refuse it by name.
  return Number.isFinite(n) ? n : (t as unknown as number);
}
