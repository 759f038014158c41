// Plain reading-ease logic (no component imports), so it can be tested with `node --test`.

// Latin letters (ASCII and Latin-1/Extended-A/B). Flesch is an English formula; no \p{..}
// classes, which the StarlingMonkey engine in componentize-js does not support.
const L = 'A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F';
const WORD = new RegExp(`[${L}]+(?:['\u2019][${L}]+)*`, 'g');
const LETTER = new RegExp(`[${L}]`);

/** The words of a text: runs of letters (apostrophes inside a word allowed), digits excluded. */
export function words(text) {
  return text.match(WORD) ?? [];
}

/** Sentences: runs ending in . ! ? (or the end of text) that contain at least one word. */
export function sentenceCount(text) {
  const parts = text.split(/[.!?]+(?=\s|$)|\n\s*\n/);
  const n = parts.filter((p) => LETTER.test(p)).length;
  return Math.max(n, 1);
}

/** English syllable estimate: vowel groups, minus a silent final "e", at least one. */
export function syllables(word) {
  let w = word.toLowerCase().replace(/['\u2019]/g, '');
  if (w.length <= 3) return 1;
  w = w.replace(/(?:[^laeiouy]es|[^laeiouy]ed|[^laeiouy]e)$/, '');
  w = w.replace(/^y/, '');
  const groups = w.match(/[aeiouy]{1,2}/g);
  return Math.max(groups ? groups.length : 0, 1);
}

/**
 * Flesch reading ease of a text:
 *   206.835 - 1.015 * (words / sentences) - 84.6 * (syllables / words)
 * Returns null when the text has no words.
 */
export function flesch(text) {
  const ws = words(text);
  if (ws.length === 0) return null;
  const syl = ws.reduce((n, w) => n + syllables(w), 0);
  const sentences = sentenceCount(text);
  return 206.835 - 1.015 * (ws.length / sentences) - 84.6 * (syl / ws.length);
}

/** "easy" (>= 70), "standard" (>= 50) or "hard". */
export function level(score) {
  if (score >= 70) return 'easy';
  if (score >= 50) return 'standard';
  return 'hard';
}
