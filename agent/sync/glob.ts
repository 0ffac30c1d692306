/**
 * Globs, matched in linear time. A glob becomes a small nondeterministic automaton that is run
 * over the path once, keeping the set of states it can be in (Thompson's construction, as RE2
 * and Go's path.Match-free matchers do): no backtracking, so no name can make a match slow. A
 * path of n characters against a glob of m tokens costs at most n x m steps.
 *
 * Syntax: `*` and `?` match within one path segment, `**` across segments (`**\/` also matches
 * nothing), `[abc]`, `[a-z]` and `[!abc]` one character (never `/`) of a set. Every other
 * character is literal. Pure.
 */

type Token =
  | { kind: "char"; code: number }
  | { kind: "one" } // ?
  | { kind: "set"; negated: boolean; ranges: number[] } // [..]: pairs lo, hi
  | { kind: "star" } // *: any run of non-/ characters
  | { kind: "any" } // **: any run of characters
  | { kind: "skip"; to: number }; // an epsilon edge to token `to` (the optional `**\/`)

const SLASH = 0x2f;

/** Why a glob cannot be compiled, or undefined. */
export function globSyntaxProblem(glob: string): string | undefined {
  for (let i = 0; i < glob.length; i++) {
    if (glob[i] === "]") return "has a ] without [";
    if (glob[i] !== "[") continue;
    const set = readSet(glob, i);
    if ("problem" in set) return set.problem;
    i = set.end;
  }
  return undefined;
}

/** The set starting at `glob[at]` (`[`): its ranges, and the index of its `]`. */
function readSet(
  glob: string,
  at: number,
): { negated: boolean; ranges: number[]; end: number } | { problem: string } {
  let i = at + 1;
  const negated = glob[i] === "!";
  if (negated) i++;
  const ranges: number[] = [];
  for (; i < glob.length && glob[i] !== "]"; i++) {
    const lo = glob.charCodeAt(i);
    if (glob[i] === "[") return { problem: "has a [ inside a [set]" };
    if (lo === SLASH)
      return { problem: "has a / inside a [set] (a set matches one character of a name)" };
    let hi = lo;
    if (glob[i + 1] === "-" && i + 2 < glob.length && glob[i + 2] !== "]") {
      hi = glob.charCodeAt(i + 2);
      if (hi < lo)
        return {
          problem: `has a range [${glob[i]}-${glob[i + 2]}] whose end comes before its start`,
        };
      if (hi === SLASH || (lo < SLASH && hi > SLASH))
        return { problem: "has a range over / inside a [set]" };
      i += 2;
    }
    ranges.push(lo, hi);
  }
  if (i >= glob.length) return { problem: "has an unclosed [" };
  if (!ranges.length) return { problem: "has an empty [set]" };
  return { negated, ranges, end: i };
}

function tokenize(glob: string): Token[] {
  const tokens: Token[] = [];
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      if (glob[i + 2] === "/") {
        // `**/`: nothing, or anything that ends with a /.
        const skip: Token = { kind: "skip", to: -1 };
        tokens.push(skip, { kind: "any" }, { kind: "char", code: SLASH });
        skip.to = tokens.length;
        i += 2;
      } else {
        tokens.push({ kind: "any" });
        i += 1;
      }
    } else if (c === "*") tokens.push({ kind: "star" });
    else if (c === "?") tokens.push({ kind: "one" });
    else if (c === "[") {
      const set = readSet(glob, i);
      if ("problem" in set) throw new Error(`glob ${JSON.stringify(glob)} ${set.problem}`);
      tokens.push({ kind: "set", negated: set.negated, ranges: set.ranges });
      i = set.end;
    } else tokens.push({ kind: "char", code: glob.charCodeAt(i) });
  }
  return tokens;
}

function inSet(token: { negated: boolean; ranges: number[] }, code: number): boolean {
  if (code === SLASH) return false;
  let found = false;
  for (let r = 0; r < token.ranges.length && !found; r += 2)
    found = code >= token.ranges[r] && code <= token.ranges[r + 1];
  return found !== token.negated;
}

export interface Glob {
  /** True when the whole path matches. */
  matches(path: string): boolean;
  /** True when the path, or a folder it is in (a prefix ending before a /), matches. */
  matchesOrIsBelow(path: string): boolean;
}

/**
 * Compiles a glob matched against a whole `/`-separated path. Throws on a glob that
 * globSyntaxProblem refuses.
 */
export function compileGlob(glob: string): Glob {
  const tokens = tokenize(glob);
  const accept = tokens.length;
  // The tokens as flat arrays (the hot loop reads numbers, not objects).
  const kinds = new Uint8Array(accept);
  const codes = new Int32Array(accept);
  tokens.forEach((t, s) => {
    kinds[s] = KIND[t.kind];
    if (t.kind === "char") codes[s] = t.code;
    if (t.kind === "skip") codes[s] = t.to;
  });
  // Scratch state sets, reused: `mark[s] === gen` says s is in the set being built.
  const mark = new Uint32Array(accept + 1);
  let gen = 0;
  let current = new Int32Array(accept + 1);
  let next = new Int32Array(accept + 1);

  /** Adds `s` and what it reaches without consuming a character (stars may match nothing). */
  const add = (set: Int32Array, size: number, s: number): number => {
    while (s <= accept && mark[s] !== gen) {
      mark[s] = gen;
      set[size++] = s;
      const kind = s < accept ? kinds[s] : CHAR;
      if (kind === SKIP) size = add(set, size, codes[s]);
      else if (kind !== STAR && kind !== ANY) break;
      s++;
    }
    return size;
  };

  /** One character: the states `current` moves to, into `next`. */
  const step = (size: number, code: number): number => {
    gen++;
    let nextSize = 0;
    for (let k = 0; k < size; k++) {
      const s = current[k];
      if (s === accept) continue;
      const kind = kinds[s];
      let to = -1;
      if (kind === CHAR) to = codes[s] === code ? s + 1 : -1;
      else if (kind === STAR) to = code !== SLASH ? s : -1;
      else if (kind === ANY) to = s;
      else if (kind === ONE) to = code !== SLASH ? s + 1 : -1;
      else if (kind === SET) to = inSet(tokens[s] as SetToken, code) ? s + 1 : -1;
      if (to >= 0) nextSize = add(next, nextSize, to);
    }
    return nextSize;
  };

  const run = (path: string, early: boolean): boolean => {
    gen++;
    let size = add(current, 0, 0);
    for (let i = 0; i < path.length && size > 0; i++) {
      const code = path.charCodeAt(i);
      if (early && code === SLASH && mark[accept] === gen) return true;
      size = step(size, code);
      [current, next] = [next, current];
    }
    return size > 0 && mark[accept] === gen;
  };
  return { matches: path => run(path, false), matchesOrIsBelow: path => run(path, true) };
}

type SetToken = Extract<Token, { kind: "set" }>;
const [CHAR, ONE, SET, STAR, ANY, SKIP] = [0, 1, 2, 3, 4, 5];
const KIND: Record<Token["kind"], number> = {
  char: CHAR,
  one: ONE,
  set: SET,
  star: STAR,
  any: ANY,
  skip: SKIP,
};
