/** The datasets API (docs/datasets.md, "The API"): versioned reference data beside
 * rulesets. Calls go through the same Transport as the generated operations
 * (./client.ts), so the key, problem+json errors and rate-limit headers are
 * handled in one place. */

import type { Transport } from "./operations";

/** A dataset value: the JSON of a case fact's argument (int or string). */
export type DatasetValue = number | string;
export type DatasetRow = DatasetValue[];

export interface DatasetPredicate {
  name: string;
  arity: number;
  rows: number;
}

/** One immutable version of a dataset: what a decision pins. */
export interface DatasetVersion {
  name: string;
  version: number;
  hash: string;
  predicates: DatasetPredicate[];
  facts: number;
  bytes: number;
  created_at: string;
  created_by: string;
  description?: string;
  tags: string[];
}

export interface FactsPage {
  predicate: string;
  arity?: number;
  rows: DatasetRow[];
  next_page_token?: string | null;
}

export interface PredicateDiff {
  predicate: string;
  arity: number;
  added: number;
  removed: number;
  added_sample: DatasetRow[];
  removed_sample: DatasetRow[];
}

export interface DatasetDiff {
  predicates: PredicateDiff[];
}

/** A ruleset version that binds a dataset (GET /v1/datasets/{name}/rulesets). */
export interface DatasetUse {
  name: string;
  version: number;
  binding: string;
  selector: string;
}

/** A dataset version a decision used (`DecisionRecord.datasets`). */
export interface DatasetRef {
  binding: string;
  name: string;
  version: number;
  hash: string;
}

const seg = (value: string | number): string => encodeURIComponent(String(value));

/** A list answer: an array, or the array under ``key`` of an object. */
function listOf<T>(answer: unknown, key: string): T[] {
  if (Array.isArray(answer)) return answer as T[];
  const value = (answer as Record<string, unknown> | null)?.[key];
  return Array.isArray(value) ? (value as T[]) : [];
}

export async function listDatasets(t: Transport, signal?: AbortSignal): Promise<DatasetVersion[]> {
  return listOf(await t.json("GET", "/v1/datasets", { signal }), "datasets");
}

export function getDataset(t: Transport, selector: string, signal?: AbortSignal): Promise<DatasetVersion> {
  return t.json("GET", `/v1/datasets/${seg(selector)}`, { signal });
}

/** Every version, newest first. */
export async function datasetVersions(t: Transport, name: string, signal?: AbortSignal): Promise<DatasetVersion[]> {
  const versions = listOf<DatasetVersion>(
    await t.json("GET", `/v1/datasets/${seg(name)}/versions`, { signal }),
    "versions",
  );
  return [...versions].sort((a, b) => b.version - a.version);
}

export function datasetFacts(
  t: Transport,
  selector: string,
  query: { predicate: string; page_size?: number; page_token?: string | null },
  signal?: AbortSignal,
): Promise<FactsPage> {
  return t.json("GET", `/v1/datasets/${seg(selector)}/facts`, { query, signal });
}

export function datasetDiff(
  t: Transport,
  name: string,
  from: string | number,
  to: string | number,
  signal?: AbortSignal,
): Promise<DatasetDiff> {
  return t.json("GET", `/v1/datasets/${seg(name)}/diff`, { query: { from, to }, signal });
}

export async function datasetRulesets(t: Transport, name: string, signal?: AbortSignal): Promise<DatasetUse[]> {
  return listOf(await t.json("GET", `/v1/datasets/${seg(name)}/rulesets`, { signal }), "rulesets");
}

export function moveDatasetTag(t: Transport, name: string, tag: string, version: number): Promise<unknown> {
  return t.json("PUT", `/v1/datasets/${seg(name)}/tags/${seg(tag)}`, { body: { version } });
}

/** A row as a fact, as the API's JSON values: `manages("alice","bob")`, `limit("bob",1000)`. */
export function rowFact(predicate: string, row: DatasetRow): string {
  return `${predicate}(${row.map((v) => JSON.stringify(v)).join(",")})`;
}
