// An expression as the parser gets it, after macros are expanded, with a map back to where each of
// its characters was written (the rule's own field, or a macro's definition in another file), so an
// error inside an expanded macro points at the macro's line and column.

/** Where an expression was written: the file, the field, and how its offsets map to lines. */
export interface ExpressionOrigin {
  file: string;
  /** Dotted field path of the expression in its file, e.g. `rules[2].when`. */
  field: string;
  /** The line and column (1-based) of a character of the expression. */
  position(offset: number): [line: number, column: number];
}

interface Piece {
  /** Offset in the expanded text. */
  at: number;
  len: number;
  origin: ExpressionOrigin;
  /** Offset in the origin's expression of this piece's first character. */
  from: number;
  /** True for characters the expansion added (the brackets around a macro): no offset inside. */
  synthetic: boolean;
}

export class ExpandedText {
  private readonly pieces: Piece[] = [];
  private text = "";

  get value(): string {
    return this.text;
  }
  get length(): number {
    return this.text.length;
  }

  /** Appends `text`, which is `origin`'s expression from offset `from`. */
  append(text: string, origin: ExpressionOrigin, from: number, synthetic = false): void {
    if (text === "") return;
    this.pieces.push({ at: this.text.length, len: text.length, origin, from, synthetic });
    this.text += text;
  }

  /** Appends another expanded text (a macro's), keeping its map. */
  appendExpanded(other: ExpandedText): void {
    const base = this.text.length;
    for (const p of other.pieces) this.pieces.push({ ...p, at: base + p.at });
    this.text += other.text;
  }

  /** Where the character at `offset` was written. */
  locate(offset: number): { origin: ExpressionOrigin; offset: number } | undefined {
    if (this.pieces.length === 0) return undefined;
    const at = Math.max(0, Math.min(offset, this.text.length - 1));
    let lo = 0;
    let hi = this.pieces.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.pieces[mid] as Piece).at <= at) lo = mid;
      else hi = mid - 1;
    }
    const p = this.pieces[lo] as Piece;
    return { origin: p.origin, offset: p.synthetic ? p.from : p.from + (at - p.at) };
  }

  static of(text: string, origin: ExpressionOrigin): ExpandedText {
    const e = new ExpandedText();
    e.append(text, origin, 0);
    return e;
  }
}
