/**
 * Static shapes with symbolic dims. Ranks are always known when a graph is built; a dim is a number
 * or a symbol such as "B" or a product of symbols such as "B*T". Knowing ranks and which dims are 1
 * is what lets autodiff compute broadcast reductions at build time.
 */
export type Dim = number | string;
export type Shape = readonly Dim[];

interface Monomial {
  coef: number;
  syms: string[];
}

function parse(d: Dim): Monomial {
  if (typeof d === 'number') return { coef: d, syms: [] };
  let coef = 1;
  const syms: string[] = [];
  for (const part of d.split('*')) {
    if (/^\d+$/.test(part)) coef *= Number(part);
    else syms.push(part);
  }
  return { coef, syms: syms.sort() };
}

function format(m: Monomial): Dim {
  if (m.syms.length === 0) return m.coef;
  return (m.coef === 1 ? [] : [String(m.coef)]).concat(m.syms).join('*');
}

export function mulDims(a: Dim, b: Dim): Dim {
  const x = parse(a);
  const y = parse(b);
  return format({ coef: x.coef * y.coef, syms: [...x.syms, ...y.syms].sort() });
}

export function divDims(a: Dim, b: Dim): Dim {
  const x = parse(a);
  const y = parse(b);
  const syms = [...x.syms];
  for (const s of y.syms) {
    const i = syms.indexOf(s);
    if (i < 0) throw new Error(`cannot divide dim ${a} by ${b}`);
    syms.splice(i, 1);
  }
  if (x.coef % y.coef !== 0) throw new Error(`dim ${a} is not divisible by ${b}`);
  return format({ coef: x.coef / y.coef, syms });
}

export function product(shape: Shape): Dim {
  return shape.reduce<Dim>((acc, d) => mulDims(acc, d), 1);
}

export function sameDim(a: Dim, b: Dim): boolean {
  return format(parse(a)) === format(parse(b));
}

/** Numpy-style broadcast of two shapes; a symbolic dim only broadcasts against 1 or itself. */
export function broadcastShapes(a: Shape, b: Shape): Dim[] {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da === 1) out.push(db);
    else if (db === 1 || sameDim(da, db)) out.push(da);
    else throw new Error(`shapes [${a}] and [${b}] do not broadcast at axis ${i}`);
  }
  return out;
}

/** The axes of `full` that a tensor of shape `part` was broadcast over (in `full`'s numbering). */
export function broadcastAxes(part: Shape, full: Shape): number[] {
  const lead = full.length - part.length;
  const axes: number[] = [];
  for (let i = 0; i < full.length; i++) {
    if (i < lead) axes.push(i);
    else if (part[i - lead] === 1 && full[i] !== 1) axes.push(i);
  }
  return axes;
}

export function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`axis ${axis} out of range for rank ${rank}`);
  return a;
}
