/** The playground's choice of a dataset version for each `%@dataset` binding of the
 * program: `NAME@latest` (the default, as at publish), a tag, or one version. The
 * choice is sent with Run as `datasets: {binding: selector}`. */

import { useEffect, useState } from "preact/hooks";
import { ApiError } from "../api/client";
import { type DatasetVersion, datasetVersions } from "../api/datasets";
import type { Transport } from "../api/operations";
import * as ops from "../api/operations";
import type { DatasetBinding } from "../editor/datasetDecl";
import { formatBytes, groupDigits } from "../format";
import { datasetHref } from "../router";

export function DatasetBindings({
  api,
  bindings,
  chosen,
  fromShare = {},
  onChoose,
}: {
  api: Transport;
  bindings: DatasetBinding[];
  /** binding → selector; a binding not in it reads `NAME@latest` */
  chosen: Record<string, string>;
  /** the choices a share link opened the page with: a problem with one says it came from the link */
  fromShare?: Record<string, string>;
  onChoose: (binding: string, selector: string) => void;
}) {
  if (bindings.length === 0) return null;
  return (
    <fieldset class="dataset-bindings" data-testid="dataset-bindings">
      <legend>Datasets the program reads</legend>
      {bindings.map((b) => (
        <BindingChoice
          key={b.binding}
          api={api}
          binding={b}
          value={chosen[b.binding] ?? ""}
          shared={fromShare[b.binding] !== undefined && fromShare[b.binding] === (chosen[b.binding] ?? "")}
          onChange={(s) => onChoose(b.binding, s)}
        />
      ))}
    </fieldset>
  );
}

/** The selectors offered for a dataset's versions: latest, each tag, each version (newest first). */
export function selectorOptions(name: string, versions: DatasetVersion[]): { value: string; label: string }[] {
  const latest = versions[0];
  const options = [{ value: `${name}@latest`, label: latest ? `latest (now v${latest.version})` : "latest" }];
  const tags = new Map<string, number>();
  for (const v of versions) for (const t of v.tags ?? []) if (!tags.has(t)) tags.set(t, v.version);
  for (const [tag, version] of [...tags].sort()) {
    options.push({ value: `${name}@${tag}`, label: `${tag} (now v${version})` });
  }
  for (const v of versions) {
    options.push({
      value: `${name}@${v.version}`,
      label: `v${v.version}: ${groupDigits(v.facts)} facts, ${formatBytes(v.bytes)}`,
    });
  }
  return options;
}

function BindingChoice({
  api,
  binding,
  value,
  shared,
  onChange,
}: {
  api: Transport;
  binding: DatasetBinding;
  value: string;
  /** the value is the one a share link chose */
  shared: boolean;
  onChange: (selector: string) => void;
}) {
  const name = binding.binding;
  const [versions, setVersions] = useState<DatasetVersion[] | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    setProblem(null);
    datasetVersions(api, name).then(
      (vs) => live && setVersions(vs),
      (e) => {
        if (!live) return;
        setVersions(null);
        setProblem(
          e instanceof ApiError && e.status === 404
            ? `no dataset named ${name} yet: upload it, or type another dataset's selector`
            : `its versions could not be listed (${e instanceof Error ? e.message : String(e)})`,
        );
      },
    );
    return () => {
      live = false;
    };
  }, [api, name]);
  const id = `dataset-binding-${name}`;
  const current = value || `${name}@latest`;
  const options = versions ? selectorOptions(name, versions) : [];
  // a selector typed elsewhere (a share link, another dataset's name) stays choosable
  const listed = options.some((o) => o.value === current);
  // listed: fine; not listed: ask the API; the list failed: ask unless it is the
  // default, whose problem the list's message already says
  const unresolved = useUnresolved(
    api,
    current,
    versions !== null ? !listed : problem !== null && current !== `${name}@latest`,
  );
  return (
    <div>
      <label for={id}>
        <code>{name}</code> ({binding.predicates.join(", ") || "no predicates"}, line {binding.line}) reads
      </label>{" "}
      {versions && versions.length > 0 ? (
        <select id={id} value={current} onChange={(e) => onChange((e.target as HTMLSelectElement).value)}>
          {!listed && <option value={current}>{current}</option>}
          {options.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      ) : (
        <input id={id} value={current} size={24} onInput={(e) => onChange((e.target as HTMLInputElement).value)} />
      )}{" "}
      {versions && versions.length > 0 && <a href={datasetHref(name)}>versions of {name}</a>}
      {problem && <p class="muted">{problem}</p>}
      {unresolved && (
        <p class="alert alert-error" data-testid="dataset-choice-problem">
          {shared ? "The share link chose " : ""}
          <code>{current}</code>
          {shared ? ", which " : " "}
          {unresolved} Choose another version{shared ? " to run it here" : ""}.
        </p>
      )}
    </div>
  );
}

const CHECK_DELAY_MS = 300;

/** Why a selector the versions list does not offer cannot be read here (a share
 * link's version removed, a tag since deleted, another tenant's dataset, a key that
 * may not read datasets), or null while unknown, when it resolves, or when not
 * `check`ed (listed, or the list is still loading). */
function useUnresolved(api: Transport, selector: string, check: boolean): string | null {
  const [why, setWhy] = useState<string | null>(null);
  useEffect(() => {
    setWhy(null);
    if (!check) return;
    const controller = new AbortController();
    // a selector being typed is checked once typing pauses, not at every key
    const timer = setTimeout(() => {
      ops.getDatasetVersion(api, selector, controller.signal).then(
        () => undefined,
        (e) => {
          if (controller.signal.aborted) return;
          const status = e instanceof ApiError ? e.status : 0;
          setWhy(
            status === 404
              ? "does not exist here: no such dataset, version or tag for this key."
              : status === 401 || status === 403
                ? "cannot be read with this key (it may not read datasets)."
                : `could not be checked (${e instanceof Error ? e.message : String(e)}).`,
          );
        },
      );
    }, CHECK_DELAY_MS);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [api, selector, check]);
  return why;
}
