/**
 * The trusted comparison of values (src/tasks/sandbox/values.ts) against Python itself: for each pair of
 * a value a program might return and a literal a test might expect, the harness's encoding of both,
 * decoded and compared here, must give what `==` gives in Python. And anything that is not the encoding
 * of a value Python could hold is refused.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEFAULT_PYTHON } from '../../src/tasks/sandbox/index.ts';
import { decodeValue, MalformedValue, pyEqual } from '../../src/tasks/sandbox/values.ts';

const SANDBOX_DIR = fileURLToPath(new URL('../../src/tasks/sandbox/', import.meta.url));

/** [a value a program returns (any expression), a literal a test expects]. */
const PAIRS: [string, string][] = [
  ['1', '1'], ['1', '1.0'], ['True', '1'], ['False', '0.0'], ['True', '2'], ['1 + 0j', '1'], ['2j', '2j'], ['0.1 + 0.2', '0.3'],
  ['-0.0', '0'], ['2 ** 53 + 1', '9007199254740993.0'], ['float(2 ** 53)', '9007199254740992'], ['10 ** 400', '1e400'],
  ["float('inf')", '1e400'], ["float('-inf')", '-1e400'], ["float('nan')", '0'], ['3 ** 200', str3pow200()], ['-(3 ** 200)', `-${str3pow200()}`],
  ['None', 'None'], ['None', '0'], ['None', "''"], ["'a'", "'a'"], ["'a'", "b'a'"], ["b'a'", "b'a'"], ["bytearray(b'ab')", "b'ab'"],
  ["'\\U0001f600\\ud800'", "'\\U0001f600\\ud800'"], ["'é'", "'e\\u0301'"],
  ['[1, 2]', '[1, 2]'], ['[1, 2]', '(1, 2)'], ['(1, [2.0])', '(1, [2])'], ['[]', '()'], ['[[[]]]', '[[[]]]'],
  ["{'a': 1, 'b': 2}", "{'b': 2, 'a': 1}"], ['{1: 2}', '{1.0: 2}'], ['{True: 2}', '{1: 2.0}'], ["{'a': 1}", "{'a': 1, 'b': 2}"], ['{(1, 2): [3]}', '{(1.0, 2): [3]}'],
  ['{1, 2}', '{2, 1}'], ['{1, 2}', '{1, 2, 3}'], ['frozenset({1})', '{1}'], ['{frozenset({1, 2}), 3}', '{frozenset({2, 1}), 3.0}'], ['set()', 'set()'], ['set()', '{}'],
  ["__import__('collections').Counter('abca')", "{'a': 2, 'b': 1, 'c': 1}"], ["__import__('collections').Counter(a=1, b=0)", "{'a': 1}"],
  ["__import__('collections').OrderedDict([(2, 'b'), (1, 'a')])", "{1: 'a', 2: 'b'}"], ["__import__('collections').namedtuple('P', 'x y')(1, 2)", '(1, 2)'],
  ["__import__('collections').deque([1])", '[1]'], ['range(3)', '[0, 1, 2]'], ['iter([1])', '[1]'], ['object()', 'None'],
];

function str3pow200(): string {
  return (3n ** 200n).toString();
}

/** Python's verdict and the harness's encodings, from one interpreter run. */
function python(): { left: unknown; right: unknown; equal: boolean }[] {
  const script = [
    'import json, sys',
    `sys.path.insert(0, ${JSON.stringify(SANDBOX_DIR)})`,
    'from harness import encode',
    'out = []',
    'for left, right in json.load(sys.stdin):',
    '    a, b = eval(left), eval(right)',
    '    out.append({"left": encode(a), "right": encode(b), "equal": a == b})',
    'print(json.dumps(out))',
  ].join('\n');
  return JSON.parse(execFileSync(DEFAULT_PYTHON, ['-I', '-B', '-c', script], { input: JSON.stringify(PAIRS) }).toString());
}

describe('sandbox values', () => {
  it("compares as Python's == does", () => {
    const verdicts = python();
    for (const [i, [left, right]] of PAIRS.entries()) {
      const { left: a, right: b, equal } = verdicts[i];
      assert.equal(pyEqual(decodeValue(a), decodeValue(b)), equal, `${left} == ${right}`);
      assert.equal(pyEqual(decodeValue(b), decodeValue(a)), equal, `${right} == ${left}`);
    }
  });

  it('refuses anything that is not a value Python could hold', () => {
    const bad: unknown[] = [
      null, 3, 'x', {}, [], ['int'], ['int', 3], ['int', '12.5'], ['int', '0x10'], ['int', '3', '4'], ['float', 'Infinity'], ['float', null],
      ['complex', 1], ['str', 1], ['bytes', 'a'], ['bytes', '6G'], ['bytes', '6A'], ['list', {}], ['tuple', [['int']]],
      ['set', [['int', '1'], ['float', 1]]], ['set', [['list', []]]], ['frozenset', [['set', []]]], ['dict', [[['int', '1']]]],
      ['dict', [[['dict', []], ['none']]]], ['dict', [[['str', 'a'], ['none']], [['str', 'a'], ['int', '1']]]], ['dict', [[['other', 'Foo'], ['none']]]],
      ['none', 1], ['bool', 1], ['decimal', '1'], ['other', 3],
    ];
    for (const value of bad) assert.throws(() => decodeValue(value), MalformedValue, JSON.stringify(value));
    const deep = (n: number): unknown => (n === 0 ? ['none'] : ['list', [deep(n - 1)]]);
    assert.doesNotThrow(() => decodeValue(deep(100)));
    assert.throws(() => decodeValue(deep(101)), /nested more than 100 deep/);
  });
});
