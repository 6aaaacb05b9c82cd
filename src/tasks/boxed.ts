/**
 * Finding `\boxed{…}` answers in LaTeX-ish model output. A regex cannot match nested braces
 * (`\boxed{\frac{1}{2}}`), so this scans with a depth counter.
 */

const BOX = /\\(?:boxed|fbox)(?![a-zA-Z])/g;

export interface Boxed {
  content: string;
  /** Offset of the backslash that opens the box, so callers can tell which of several markers came last. */
  start: number;
}

/** The box whose name ends at `afterName`, or null when its argument is never closed. */
function boxAt(text: string, start: number, afterName: number): (Boxed & { end: number }) | null {
  let i = afterName;
  while (i < text.length && /\s/.test(text[i])) i++;
  if (text[i] !== '{') {
    const token = /^[^\s${}]+/.exec(text.slice(i));
    return token ? { content: token[0], start, end: i + token[0].length } : null;
  }
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    const c = text[j];
    if (c === '\\') {
      j++;
    } else if (c === '{') {
      depth++;
    } else if (c === '}' && --depth === 0) {
      return { content: text.slice(i + 1, j), start, end: j + 1 };
    }
  }
  return null;
}

/**
 * The last outermost `\boxed{…}` or `\fbox{…}` in `text` (boxes inside it are part of its content),
 * with nested and escaped (`\{`) braces handled; also the brace-less `\boxed 5` form. Null when there
 * is none, or when the last one is never closed (a truncated answer is not an answer, whatever an
 * earlier box said).
 */
export function lastBoxed(text: string): Boxed | null {
  let last: Boxed | null = null;
  let from = 0;
  for (const m of text.matchAll(BOX)) {
    if (m.index < from) continue; // nested in the previous box
    const box = boxAt(text, m.index, m.index + m[0].length);
    if (!box) return null;
    last = { content: box.content, start: box.start };
    from = box.end;
  }
  return last;
}

/** Whether `text` has a `\boxed` or `\fbox` at all, closed or not. */
export function hasBox(text: string): boolean {
  return text.search(BOX) >= 0;
}
