// Plain logic of stage {{name}} (no component imports), so `node --test` can test it.

/** The number of whitespace-separated words in text. */
export function wordCount(text) {
  const t = text.trim();
  return t === '' ? 0 : t.split(/\s+/).length;
}
