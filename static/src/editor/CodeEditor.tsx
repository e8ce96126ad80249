/** A CodeMirror 6 editor as a Preact component. */

import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { json } from "@codemirror/lang-json";
import { bracketMatching, defaultHighlightStyle, syntaxHighlighting } from "@codemirror/language";
import { type Diagnostic as CmDiagnostic, linter, lintGutter } from "@codemirror/lint";
import { EditorSelection, EditorState, type Extension } from "@codemirror/state";
import { EditorView, highlightActiveLine, keymap, lineNumbers } from "@codemirror/view";
import { useEffect, useRef } from "preact/hooks";
import { datalog } from "./datalog";

export type LintSource = (text: string) => Promise<CmDiagnostic[]> | CmDiagnostic[];

export interface EditorHandle {
  /** Put the cursor at the start of a 1-based line, scroll to it and focus the editor. */
  goToLine(line: number): void;
  setValue(text: string): void;
}

interface Props {
  value: string;
  onChange: (text: string) => void;
  language: "datalog" | "json";
  lint?: LintSource;
  lintDelayMs?: number;
  label: string;
  handle?: { current: EditorHandle | null };
  testId?: string;
  /** Ctrl+Enter (Cmd+Enter): run the program, from inside the editor too. */
  onRun?: () => void;
}

export function CodeEditor({
  value,
  onChange,
  language,
  lint,
  lintDelayMs = 400,
  label,
  handle,
  testId,
  onRun,
}: Props) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const changed = useRef(onChange);
  changed.current = onChange;
  const runner = useRef(onRun);
  runner.current = onRun;

  useEffect(() => {
    const extensions: Extension[] = [
      lineNumbers(),
      history(),
      bracketMatching(),
      highlightActiveLine(),
      syntaxHighlighting(defaultHighlightStyle),
      // before the default keymap, whose Mod-Enter inserts a blank line
      keymap.of([
        {
          key: "Mod-Enter",
          run: () => {
            if (!runner.current) return false;
            runner.current();
            return true;
          },
        },
      ]),
      keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
      language === "datalog" ? datalog : json(),
      EditorView.lineWrapping,
      EditorView.contentAttributes.of({ "aria-label": label }),
      EditorView.updateListener.of((update) => {
        if (update.docChanged) changed.current(update.state.doc.toString());
      }),
    ];
    if (lint)
      extensions.push(
        lintGutter(),
        linter((v) => lint(v.state.doc.toString()), { delay: lintDelayMs }),
      );
    const editor = new EditorView({
      state: EditorState.create({ doc: value, extensions }),
      parent: host.current!,
    });
    view.current = editor;
    // the scroller is a scrollable region: it must be reachable by keyboard (axe
    // scrollable-region-focusable) and say what it holds
    editor.scrollDOM.tabIndex = 0;
    editor.scrollDOM.setAttribute("aria-label", `${label} (scroll area)`);
    if (handle) {
      handle.current = {
        goToLine(line: number) {
          const doc = editor.state.doc;
          const target = doc.line(Math.max(1, Math.min(line, doc.lines)));
          editor.dispatch({
            selection: EditorSelection.cursor(target.from),
            effects: EditorView.scrollIntoView(target.from, { y: "center" }),
          });
          editor.focus();
        },
        setValue(text: string) {
          editor.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: text } });
        },
      };
    }
    return () => {
      editor.destroy();
      view.current = null;
      if (handle) handle.current = null;
    };
    // the editor is created once; later values arrive through handle.setValue
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  return (
    <>
      <div class={`editor editor-${language}`} ref={host} data-testid={testId} />
      <p class="editor-hint muted">
        In the editor, Tab indents: press <kbd>Esc</kbd> then <kbd>Tab</kbd> to move on
        {onRun ? (
          <>
            ; <kbd>Ctrl</kbd>+<kbd>Enter</kbd> runs
          </>
        ) : null}
        .
      </p>
    </>
  );
}

/** 1-based line/column (the API's) to a document offset range. */
export function rangeOf(
  text: string,
  line: number,
  column: number,
  endColumn?: number | null,
): { from: number; to: number } {
  const lines = text.split("\n");
  const l = Math.max(1, Math.min(line, lines.length));
  let offset = 0;
  for (let i = 0; i < l - 1; i++) offset += lines[i].length + 1;
  const length = lines[l - 1].length;
  const from = offset + Math.max(0, Math.min(column - 1, length));
  let to = offset + Math.max(0, Math.min((endColumn ?? column) - 1, length));
  if (to <= from) to = Math.min(from + 1, offset + length);
  if (to <= from) return { from: offset, to: offset + length };
  return { from, to };
}
