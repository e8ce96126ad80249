/** Datalog (the clingo fragment Entail speaks) for CodeMirror: a stream tokenizer. */

import { StreamLanguage, type StreamParser } from "@codemirror/language";

interface State {
  inBlockComment: boolean;
}

export const datalogParser: StreamParser<State> = {
  name: "datalog",
  startState: () => ({ inBlockComment: false }),
  token(stream, state) {
    if (state.inBlockComment) {
      if (stream.skipTo("*%")) {
        stream.match("*%");
        state.inBlockComment = false;
      } else stream.skipToEnd();
      return "blockComment";
    }
    if (stream.eatSpace()) return null;
    if (stream.match("%*")) {
      state.inBlockComment = true;
      return "blockComment";
    }
    if (stream.match("%")) {
      stream.skipToEnd();
      return "lineComment";
    }
    if (stream.match(/^"(?:[^"\\]|\\.)*"?/)) return "string";
    if (stream.match(/^#[a-z]+/)) return "keyword";
    if (stream.match(/^not\b/)) return "operatorKeyword";
    if (stream.match(/^\d+/)) return "number";
    if (stream.match(/^_*[A-Z][A-Za-z0-9_']*/) || stream.match(/^_(?![A-Za-z0-9])/)) return "variableName";
    if (stream.match(/^_*[a-z][A-Za-z0-9_']*(?=\s*\()/)) return "variableName.function";
    if (stream.match(/^_*[a-z][A-Za-z0-9_']*/)) return "atom";
    if (stream.match(":-")) return "definitionOperator";
    if (stream.match(/^(?:!=|<=|>=|==|<|>|=)/)) return "compareOperator";
    if (stream.match(/^[+\-*/\\]/)) return "arithmeticOperator";
    if (stream.match(/^[().,:;{}]/)) return "punctuation";
    stream.next();
    return "invalid";
  },
  languageData: { commentTokens: { line: "%", block: { open: "%*", close: "*%" } } },
};

export const datalog = StreamLanguage.define(datalogParser);

/** The tokens of a source, for tests and for a plain rendering without an editor. */
export function tokenize(source: string): { text: string; type: string | null }[] {
  const state = datalogParser.startState!(2);
  const out: { text: string; type: string | null }[] = [];
  for (const line of source.split("\n")) {
    let pos = 0;
    const stream = new MiniStream(line);
    while (!stream.eol()) {
      const type = datalogParser.token(stream as never, state);
      out.push({ text: line.slice(pos, stream.pos), type });
      stream.start = pos = stream.pos;
    }
  }
  return out;
}

/** Enough of CodeMirror's StringStream for the tokenizer above. */
class MiniStream {
  pos = 0;
  start = 0;
  constructor(readonly string: string) {}
  eol() {
    return this.pos >= this.string.length;
  }
  next() {
    return this.pos < this.string.length ? this.string[this.pos++] : undefined;
  }
  eatSpace() {
    const start = this.pos;
    while (/\s/.test(this.string[this.pos] ?? "")) this.pos++;
    return this.pos > start;
  }
  skipToEnd() {
    this.pos = this.string.length;
  }
  skipTo(text: string) {
    const found = this.string.indexOf(text, this.pos);
    if (found < 0) return false;
    this.pos = found;
    return true;
  }
  match(pattern: string | RegExp) {
    if (typeof pattern === "string") {
      if (this.string.startsWith(pattern, this.pos)) {
        this.pos += pattern.length;
        return true;
      }
      return false;
    }
    const m = this.string.slice(this.pos).match(pattern);
    if (m?.index !== 0) return null;
    this.pos += m[0].length;
    return m;
  }
}
