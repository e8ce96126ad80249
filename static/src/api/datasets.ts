/** The datasets API (docs/datasets.md, "The API"): versioned reference data beside
 * rulesets. Calls go through the same Transport as the generated operations
 * (./client.ts), so the key, problem+json errors and rate-limit headers are
 * handled in one place. */

import type * as Api from "./openapi";
import type { Transport } from "./operations";
import * as ops from "./operations";

/** A dataset value: the JSON of a case fact's argument (int or string). */
export type DatasetValue = number | string;
export type DatasetRow = DatasetValue[];

export type DatasetPredicate = Api.DatasetPredicateOut;
/** One immutable version of a dataset: what a decision pins. */
export type DatasetVersion = Api.DatasetVersionOut;
export type FactsPage = Api.DatasetFactsOut;
export type PredicateDiff = Api.DatasetPredicateDiffOut;
export type DatasetDiff = Pick<Api.DatasetDiffOut, "predicates">;

/** A ruleset version that binds a dataset (GET /v1/datasets/{name}/rulesets). */
export type DatasetUse = Api.DatasetBindingOut;

/** A dataset version a decision used (`DecisionRecord.datasets`). */
export interface DatasetRef {
  binding: string;
  name: string;
  version: number;
  hash: string;
}

export async function listDatasets(t: Transport, signal?: AbortSignal): Promise<DatasetVersion[]> {
  return (await ops.listDatasets(t, signal)).datasets;
}

/** Every version, newest first. */
export async function datasetVersions(t: Transport, name: string, signal?: AbortSignal): Promise<DatasetVersion[]> {
  const { versions } = await ops.listDatasetVersions(t, name, signal);
  return [...versions].sort((a, b) => b.version - a.version);
}

export function datasetFacts(
  t: Transport,
  selector: string,
  query: { predicate: string; page_size?: number; page_token?: string | null },
  signal?: AbortSignal,
): Promise<FactsPage> {
  return ops.datasetFacts(t, selector, query, signal);
}

/** ``from``/``to``: a version number or tag of ``name``, or a full selector. */
export function datasetDiff(
  t: Transport,
  name: string,
  from: string | number,
  to: string | number,
  signal?: AbortSignal,
): Promise<DatasetDiff> {
  return ops.datasetDiff(t, name, { from: String(from), to: String(to) }, signal);
}

export type TagMove = Api.DatasetTagMoveOut;

/** A tag's moves, newest first. */
export async function datasetTagHistory(t: Transport, name: string, tag: string): Promise<TagMove[]> {
  return (await ops.datasetTagHistory(t, name, tag)).moves;
}

/** The ruleset versions that bind it, newest first. */
export async function datasetRulesets(t: Transport, name: string, signal?: AbortSignal): Promise<DatasetUse[]> {
  return (await ops.datasetRulesets(t, name, signal)).rulesets;
}

export function moveDatasetTag(
  t: Transport,
  name: string,
  tag: string,
  version: number,
): Promise<Api.DatasetTagMoveOut> {
  return ops.moveDatasetTag(t, name, tag, { version });
}

/** A row as a fact, as the API's JSON values: `manages("alice","bob")`, `limit("bob",1000)`. */
export function rowFact(predicate: string, row: DatasetRow): string {
  return `${predicate}(${row.map((v) => JSON.stringify(v)).join(",")})`;
}
