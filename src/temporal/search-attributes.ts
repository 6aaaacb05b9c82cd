/**
 * The typed search attributes rise sets on its workflows, so the Temporal UI can filter them
 * (e.g. `RiseExperiment="quickstart" AND RiseStep="train"`).
 *
 * Pure: imported by workflow code. The dev server registers every attribute in `RISE_SEARCH_ATTRIBUTES`
 * at start (also on an existing database); a cluster's operator registers them once with
 * `temporal operator search-attribute create --name RiseExperiment --type Keyword` (and so on).
 * SQLite visibility allows 10 custom Keyword and 3 Int attributes per namespace, so spend them carefully.
 */

import { defineSearchAttributeKey, type SearchAttributeType } from '@temporalio/common';

/** The experiment's name (the spec's `name`). */
export const RISE_EXPERIMENT = defineSearchAttributeKey('RiseExperiment', 'KEYWORD');
/** The arm (ablation) a workflow belongs to. */
export const RISE_ARM = defineSearchAttributeKey('RiseArm', 'KEYWORD');
/** The RISE iteration, from 1; 0 for the boost step. */
export const RISE_ITERATION = defineSearchAttributeKey('RiseIteration', 'INT');
/** The step running now: boost, rollout, relabel, filter, train or evaluate. */
export const RISE_STEP = defineSearchAttributeKey('RiseStep', 'KEYWORD');
/** rise's own status of the workflow (e.g. running, paused, done, failed). */
export const RISE_STATUS = defineSearchAttributeKey('RiseStatus', 'KEYWORD');

/** Name → type of every attribute above, as the dev server registers them. */
export const RISE_SEARCH_ATTRIBUTES: Readonly<Record<string, SearchAttributeType>> = Object.freeze(
  Object.fromEntries([RISE_EXPERIMENT, RISE_ARM, RISE_ITERATION, RISE_STEP, RISE_STATUS].map((k) => [k.name, k.type])),
);
