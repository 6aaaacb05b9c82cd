"""Turns test statements into checks, for rise's sandbox (src/tasks/sandbox/checks.ts). Trusted: it runs
outside the sandbox, on tests (never on candidate programs), and only parses them.

A test `assert EXPR == LITERAL` (either side the literal, an optional message) becomes
{"expr": EXPR, "expected": ENCODED, "literal": LITERAL}: the sandbox evaluates EXPR and sends its value
back, and the trusted side compares it with the literal, so the candidate never sees the expected value
and nothing it does inside can make a wrong value compare equal. Every other test becomes
{"statement": TEST}, run inside as before: it passes when it raises nothing.

stdin: a JSON array of test lists; stdout: a JSON array of check lists, in the same order.
"""

import ast
import json
import sys

from harness import encode


def literal(node):
    """(True, value) when `node` is a literal (ast.literal_eval accepts it), else (False, None)."""
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def compile_test(test):
    try:
        tree = ast.parse(test)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return {"statement": test}  # the sandbox reports the error as the test's failure
    if len(tree.body) == 1 and isinstance(tree.body[0], ast.Assert):
        node = tree.body[0].test
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq):
            for expr, lit in ((node.left, node.comparators[0]), (node.comparators[0], node.left)):
                ok, value = literal(lit)
                if ok:
                    try:
                        expected = encode(value)
                    except ValueError:
                        break  # nested deeper than a value may be sent
                    return {"expr": ast.unparse(expr), "expected": expected, "literal": ast.unparse(lit)[:200]}
    return {"statement": test}


def main():
    lists = json.load(sys.stdin)
    json.dump([[compile_test(test) for test in tests] for tests in lists], sys.stdout)


if __name__ == "__main__":
    main()
