// Normalising what users type before a rule compares it: the same phone number arrives as
// 17012345678, +86 170 1234 5678, +86-170-1234-5678 or in full-width digits.

/**
 * The digits of a mainland mobile number without its country code: `+86 170-1234-5678` ->
 * `17012345678`. A number that is not a mainland mobile number keeps all its digits.
 */
export function phoneDigits(typed: string): string {
  const text = typed.length > 64 ? typed.slice(0, 64) : typed;
  let digits = "";
  for (const c of text.normalize("NFKC")) if (c >= "0" && c <= "9") digits += c;
  if (digits.length === 13 && digits.startsWith("86") && digits[2] === "1") return digits.slice(2);
  if (digits.length === 15 && digits.startsWith("0086") && digits[4] === "1") return digits.slice(4);
  return digits;
}
