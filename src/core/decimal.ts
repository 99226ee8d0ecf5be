// The one reader of decimal numbers in the runtime's text (arguments,
// environment, the front's introduction): digits only, at most `digits`
// of them, so that no value reaches the range a double cannot hold
// exactly. Each caller adds its own range.

export function decimalOf(text: string | undefined, digits: number): number | undefined {
  if (text === undefined || text.length === 0 || text.length > digits) return undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
  }
  return Number(text);
}
