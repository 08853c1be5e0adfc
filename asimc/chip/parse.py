"""Chip text -> syntax tree (``ChipFile``), or a ChipError listing every syntax error found.

Parsing runs in two steps. A tolerant scan first checks what a parser handles badly: strings that
never close and braces that do not balance (reported with the place of the culprit, not where the
parser gave up). Then Lark parses with the grammar in grammar/acim.lark; on a syntax error the
parser is repaired (a missing value is inserted, a stray token skipped) so that independent errors
further on are reported too. Syntax errors are phrased for chip designers by ``syntax_errors``.
"""
from __future__ import annotations

import re
from lark import Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ..errors import ChipError, Diagnostic
from .grammar import UNIT_PATTERN, chip_parser
from .source import SourceText, Span
from .syntax import Block, ChipDecl, ChipFile, Entry, Layer, Number, Statement, Text, Word
from .syntax_errors import describe_unexpected_characters, describe_unexpected_token

MAX_SYNTAX_ERRORS = 20


def parse_text(source: SourceText) -> ChipFile:
    """The syntax tree of a chip file; raises ChipError with every syntax error found."""
    problems = scan_strings_and_braces(source)
    unterminated = [d for d in problems if d.message.startswith("unterminated string")]
    if unterminated:
        # An open string swallows the rest of its line (braces too): report only the string.
        raise ChipError(unterminated)
    if problems:
        # Also show where the parser first stumbles: for a missing `{` that is the precise spot.
        # (Not when it only stumbles at the end of the file: that is the brace problem again.)
        taken = {(p.line, p.column) for p in problems} | {_end_of(source)}
        first = [d for d in _lark_errors(source, limit=1)[1] if (d.line, d.column) not in taken]
        raise ChipError(sorted(first + problems, key=lambda d: (d.line, d.column)))
    tree, problems = _lark_errors(source, limit=MAX_SYNTAX_ERRORS)
    if problems or tree is None:
        raise ChipError(problems or [source.diagnostic(Span(1, 1), "cannot parse this file")])
    builder = _TreeToSyntax(source)
    chips = tuple(builder.chip(c) for c in tree.children)
    if builder.problems:
        raise ChipError(builder.problems)
    return ChipFile(source, chips)


def _end_of(source: SourceText) -> tuple[int, int]:
    lines = source.text.split("\n")
    return len(lines), len(lines[-1]) + 1


# ---- step 1: strings and braces -----------------------------------------------------------------

_OPEN_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*("?)')


def scan_strings_and_braces(source: SourceText) -> list[Diagnostic]:
    """Unterminated strings and unbalanced braces, located where a person would fix them."""
    text, problems = source.text, []
    braces: list[list] = []                  # [line, column, line of the matching `}` or None]
    open_stack: list[list] = []
    unmatched_close: list[tuple[int, int]] = []
    line, line_start, i = 1, 0, 0
    while i < len(text):
        ch = text[i]
        if ch == "\n":
            line, line_start = line + 1, i + 1
        elif ch == "#":
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        elif ch == '"':
            match = _OPEN_STRING.match(text, i)
            if not match.group(1):
                problems.append(source.diagnostic(
                    Span(line, i - line_start + 1, match.end() - i),
                    "unterminated string: the closing `\"` is missing",
                    help="strings end on the line they start; write a line break as `\\n`"))
            i = match.end()
            continue
        elif ch == "{":
            braces.append([line, i - line_start + 1, None])
            open_stack.append(braces[-1])
        elif ch == "}":
            if open_stack:
                open_stack.pop()[2] = line
            else:
                unmatched_close.append((line, i - line_start + 1))
        i += 1
    for ln, col in unmatched_close:
        problems.append(source.diagnostic(
            Span(ln, col), f"unbalanced braces: `}}` at {ln}:{col} has no matching `{{`",
            help="remove it, or add the `{` it closes"))
    for ln, col in _blame_unclosed(source.text.split("\n"), braces, len(open_stack)):
        problems.append(source.diagnostic(
            Span(ln, col), f"unbalanced braces: `{{` at {ln}:{col} is never closed",
            help="add the matching `}`"))
    return problems


def _blame_unclosed(lines: list[str], braces: list[list], count: int) -> list[tuple[int, int]]:
    """Which ``count`` braces to report as never closed.

    Matching by nesting leaves the outermost braces open (usually `chip {`), but the culprit is
    usually an inner block whose `}` was forgotten, so that a later `}` closed it instead. A brace
    looks forgotten when, before its (matched) `}`, a line starts at an indentation no deeper than
    the brace's own line. For a brace at the end of its line this only counts when the author
    indents (the next line is deeper); `array { rows 3` followed by a line at the same depth
    always counts. Suspects are blamed first, then the braces left open by the matching.
    """
    def indent(text: str) -> int:
        return len(text) - len(text.lstrip())

    def content_lines(first: int, last: int):
        for number in range(first, min(last, len(lines)) + 1):
            stripped = lines[number - 1].strip()
            if stripped and not stripped.startswith(("}", "#")):
                yield number, indent(lines[number - 1])

    suspects = []
    for line, column, close_line in braces:
        opener = lines[line - 1]
        rest = opener[column:].split("#")[0].strip()
        if close_line == line or rest.startswith("}"):
            continue
        following = list(content_lines(line + 1, close_line or len(lines)))
        if not following:
            continue
        if not rest and following[0][1] <= indent(opener):
            continue                         # an unindented file: indentation says nothing
        if any(depth <= indent(opener) for _, depth in following):
            suspects.append((line, column))
    blamed = suspects[:count]
    for line, column, close_line in reversed(braces):
        if len(blamed) >= count:
            break
        if close_line is None and (line, column) not in blamed:
            blamed.append((line, column))
    return sorted(blamed)


# ---- step 2: Lark, with repair after each error -------------------------------------------------

# After skipping an unknown word, also skip the value written after it (`rowz 255`).
_VALUE_AFTER = re.compile(
    r'[ \t]*(?:[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?'
    r'(?:[ \t]*' + UNIT_PATTERN + ')?'
    r'|"(?:[^"\\\n]|\\.)*")')
_BLANK_OR_COMMENT = re.compile(r'(?:\s|#[^\n]*)*')

# Placeholder tokens the repair may insert where a value is missing.
_INSERTABLE = {"NUMBER": "0", "STRING": '""', "WORD": "_"}


class _Recovery:
    """Records each syntax error and repairs the parse so that later errors surface too."""

    def __init__(self, source: SourceText, limit: int):
        self.source, self.limit = source, limit
        self.problems: list[Diagnostic] = []
        self.resume_at = -1        # where parsing resumed after the last skipped token

    def __call__(self, error: UnexpectedInput) -> bool:
        start = _offset_of(error)
        if not self._is_cascade(start):
            self.problems.append(self.describe(error))
        if len(self.problems) >= self.limit:
            return False
        if isinstance(error, UnexpectedCharacters):
            self.resume_at = start + 1
            return True
        return self._repair(error)

    def describe(self, error: UnexpectedInput) -> Diagnostic:
        if isinstance(error, UnexpectedToken):
            return describe_unexpected_token(self.source, error)
        return describe_unexpected_characters(self.source, error)

    def _is_cascade(self, start: int) -> bool:
        # An error right after a skipped token is usually a consequence of the first one.
        if self.resume_at < 0 or start < self.resume_at:
            return False
        gap = _BLANK_OR_COMMENT.match(self.source.text, self.resume_at)
        return gap.end() >= start

    def _repair(self, error: UnexpectedToken) -> bool:
        token, parser = error.token, error.interactive_parser
        if token.type == "$END" or token.type == "RBRACE":
            # The braces balance (step 1), so a `}` the parser did not want means a value is
            # missing before it: insert one, or stop if that does not help.
            return self._insert_before(parser, token)
        if self._insert_before(parser, token):
            return True
        lexer_state = parser.lexer_thread.state
        position = lexer_state.line_ctr.char_pos
        if token.type == "LBRACE":
            end = _matching_brace(self.source.text, position - 1)
            lexer_state.line_ctr.feed(self.source.text[position:end])
        elif token.type not in ("NUMBER", "STRING"):
            value = _VALUE_AFTER.match(self.source.text, position)
            if value and value.group():
                lexer_state.line_ctr.feed(value.group())
        self.resume_at = lexer_state.line_ctr.char_pos
        return True

    def _insert_before(self, parser, token: Token) -> bool:
        accepted = parser.accepts()
        for name in [n for n in _INSERTABLE if n in accepted]:
            placeholder = Token.new_borrow_pos(name, _INSERTABLE[name], token)
            trial = parser.copy()
            try:
                trial.feed_token(placeholder)
                if token.type != "$END":
                    trial.feed_token(token)
            except UnexpectedInput:
                continue
            parser.feed_token(placeholder)
            if token.type != "$END":
                parser.feed_token(token)
            return True
        return False


def _lark_errors(source: SourceText, limit: int) -> tuple[Tree | None, list[Diagnostic]]:
    recovery = _Recovery(source, limit)
    try:
        tree = chip_parser().parse(source.text, on_error=recovery)
    except UnexpectedInput as error:
        if not recovery.problems:
            recovery.problems.append(recovery.describe(error))
        tree = None
    except LarkError:
        tree = None
    problems = recovery.problems
    if not problems and tree is None:
        problems = [source.diagnostic(Span(1, 1), "cannot parse this file")]
    return (None if problems else tree), problems


def _offset_of(error: UnexpectedInput) -> int:
    if isinstance(error, UnexpectedToken):
        pos = getattr(error.token, "start_pos", None)
        if pos is not None:
            return pos
    return getattr(error, "pos_in_stream", 0) or 0


def _matching_brace(text: str, open_at: int) -> int:
    """Offset just after the `}` matching the `{` at ``open_at`` (braces balance: step 1)."""
    depth = 0
    for match in re.compile(r'#[^\n]*|"(?:[^"\\\n]|\\.)*"?|[{}]').finditer(text, open_at):
        if match.group() == "{":
            depth += 1
        elif match.group() == "}":
            depth -= 1
            if depth == 0:
                return match.end()
    return len(text)


# ---- the Lark tree -> syntax dataclasses --------------------------------------------------------

def _span(token: Token) -> Span:
    return Span(token.line, token.column, max(1, len(token.value)))


def _tokens(tree: Tree) -> list[Token]:
    return [c for c in tree.children if isinstance(c, Token) and c.type not in ("LBRACE", "RBRACE")]


def _subtrees(tree: Tree) -> list[Tree]:
    return [c for c in tree.children if isinstance(c, Tree)]


_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_ESCAPE_RE = re.compile(r"\\(u\{([0-9A-Fa-f]{1,6})\}|.)", re.S)


class _TreeToSyntax:
    """Builds the syntax dataclasses; collects string-escape errors on the way."""

    def __init__(self, source: SourceText):
        self.source = source
        self.problems: list[Diagnostic] = []

    def chip(self, tree: Tree) -> ChipDecl:
        keyword, name = _tokens(tree)[:2]
        extends, statements, blocks, layers = None, [], [], []
        for child in _subtrees(tree):
            if child.data == "extends":
                extends = self.text(_tokens(child)[1])
            elif child.data == "statement":
                statements.append(self.statement(child))
            elif child.data == "layer":
                layers.append(self.layer(child))
            else:
                blocks.append(self.block(child))
        return ChipDecl(self.text(name), _span(keyword), extends, tuple(statements),
                        tuple(blocks), tuple(layers))

    def statement(self, tree: Tree) -> Statement:
        keyword, value = _tokens(tree)
        node = self.text(value) if value.type == "STRING" else Word(value.value, _span(value))
        return Statement(keyword.value, _span(keyword), node)

    def layer(self, tree: Tree) -> Layer:
        keyword, pattern = _tokens(tree)[:2]
        blocks, digital = [], []
        for child in _subtrees(tree):
            if child.data == "digital":
                digital.append(_span(_tokens(child)[0]))
            else:
                blocks.append(self.block(child))
        return Layer(self.text(pattern), _span(keyword), tuple(blocks), tuple(digital))

    def block(self, tree: Tree) -> Block:
        tokens = _tokens(tree)
        keyword = tokens[0]
        kind = Word(tokens[1].value, _span(tokens[1])) if len(tokens) > 1 else None
        entries = tuple(self.entry(field) for field in _subtrees(tree))
        return Block(str(tree.data), _span(keyword), entries, kind)

    def entry(self, tree: Tree) -> Entry:
        keyword = _tokens(tree)[0]
        value: Number | Word | Text | None = None
        rest = tree.children[1:]
        if rest and isinstance(rest[0], Tree):           # a number
            parts = rest[0].children
            unit = parts[1] if len(parts) > 1 else None
            value = Number(parts[0].value, _span(parts[0]), unit.value if unit else None,
                           _span(unit) if unit else None)
        elif rest and rest[0].type == "STRING":          # a file name, a digest
            value = self.text(rest[0])
        elif rest:
            value = Word(rest[0].value, _span(rest[0]))
        return Entry(keyword.value, _span(keyword), value)

    def text(self, token: Token) -> Text:
        return Text(self.unescape(token), _span(token))

    def unescape(self, token: Token) -> str:
        body = token.value[1:-1]

        def replace(match: re.Match) -> str:
            if match.group(2) is not None:
                code = int(match.group(2), 16)
                if code <= 0x10FFFF:
                    return chr(code)
            elif match.group(1) in _ESCAPES:
                return _ESCAPES[match.group(1)]
            column = token.column + 1 + match.start()
            self.problems.append(self.source.diagnostic(
                Span(token.line, column, len(match.group())),
                f"unknown escape `{match.group()}` in a string",
                help='write `\\\\` for a backslash; escapes are \\" \\\\ \\n \\t \\r \\u{HEX}'))
            return match.group()

        return _ESCAPE_RE.sub(replace, body)
