/**
 * What is wrong with a spec, as the user reads it: the JSON path, what was expected and what was
 * found, and where in the file when the spec came from one. Validation collects every issue before
 * failing, so one `rise validate` shows them all.
 */

import type { Location } from './json-text.ts';

export interface SpecIssue {
  /** JSON Pointer into the spec file; "" = the whole document (or its text, for a syntax error). */
  path: string;
  /** Starts with what was expected or what is wrong; ends with what was found and a suggestion, if any. */
  message: string;
  /** Where `path` is in the file (for `loadSpec`; absent for a value validated without its text). */
  location?: Location;
}

export function formatIssue(issue: SpecIssue, file?: string): string {
  const where = file === undefined ? '' : issue.location ? `${file}:${issue.location.line}:${issue.location.column}: ` : `${file}: `;
  return `${where}${issue.path === '' ? '' : `${issue.path}: `}${issue.message}`;
}

export class SpecError extends Error {
  override name = 'SpecError';
  constructor(
    readonly issues: SpecIssue[],
    readonly file?: string,
  ) {
    const head = `${file ?? 'spec'}: ${issues.length === 1 ? '1 error' : `${issues.length} errors`}`;
    super([head, ...issues.map((issue) => formatIssue(issue, file))].join('\n'));
  }
}

/** A value as it appears in a message: JSON, cut short when long. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const json = JSON.stringify(value);
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}
