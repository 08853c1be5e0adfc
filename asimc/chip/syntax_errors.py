"""Syntax errors in words a chip designer understands.

Lark reports "unexpected token X, expected one of {ROWS, COLS, __ANON_3}". This module turns that
into "`rowz` is not a field of `array`" with "did you mean `rows`?", or "expected a number after
`rows`, found `cols`", using the parser's stack to know which block and keyword came before.
"""
from __future__ import annotations

import difflib
import re

from lark import Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedToken

from ..errors import Diagnostic
from . import schema
from .grammar import keyword_text as _keyword_text
from .source import SourceText, Span

# How a terminal the parser expected is named in a message.
_TERMINAL_PHRASES = {
    "NUMBER": "a number", "STRING": "a quoted string", "WORD": "a word",
    "DIGITAL_WORD": "a word", "UNIT": "a unit", "LBRACE": "`{`", "RBRACE": "`}`",
    "$END": "the end of the file",
}
_CHIP_WORDS = {"layer", "chip", *schema.STATEMENTS, *schema.BLOCK_ORDER}
_NOT_A_NUMBER = re.compile(r"[+-](?:nan|inf(?:inity)?)(?![A-Za-z0-9_])", re.IGNORECASE)
_NOT_NUMBERS = {"nan", "inf", "infinity", "infty"}
_STATEMENT_BLOCKS = ("layer",) + schema.BLOCK_ORDER


def suggest(word: str, candidates) -> str | None:
    """The nearest valid word, if one is close enough (case differences count as close)."""
    candidates = sorted(set(candidates))
    by_lower = {c.lower(): c for c in candidates}
    if word.lower() in by_lower and by_lower[word.lower()] != word:
        return by_lower[word.lower()]
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[close[0]] if close else None


def did_you_mean(word: str, candidates) -> str:
    best = suggest(word, candidates)
    return f"did you mean `{best}`?" if best else ""


def quoted_list(words, last="or") -> str:
    words = [f"`{w}`" if not w.startswith(("a ", "an ", "the ", "`")) else w for w in words]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + f" {last} " + words[-1]


def describe_unexpected_characters(source: SourceText, error: UnexpectedCharacters) -> Diagnostic:
    char = error.char
    spelled = _NOT_A_NUMBER.match(source.text, error.pos_in_stream)
    if spelled:
        return source.diagnostic(Span(error.line, error.column, len(spelled.group())),
                                 f"`{spelled.group()}` is not a number: values must be finite "
                                 "numbers", help="write a number such as `0.5`")
    shown = f"`{char}`" if char.isprintable() and not char.isspace() else f"U+{ord(char):04X}"
    help = {
        "=": "write a field and its value side by side: `rows 255`",
        ":": "write a field and its value side by side: `rows 255`",
        ";": "statements need no `;`",
        ",": "separate values with spaces, not commas",
        "'": 'strings use double quotes: "..."',
        "[": "blocks use braces: `array { ... }`", "]": "blocks use braces: `array { ... }`",
        "(": "blocks use braces: `array { ... }`", ")": "blocks use braces: `array { ... }`",
    }.get(char, "")
    if not char.isprintable():
        help = "is this a binary file? chip files are text"
    return source.diagnostic(Span(error.line, error.column), f"unexpected character {shown}",
                             help=help)


def describe_unexpected_token(source: SourceText, error: UnexpectedToken) -> Diagnostic:
    token = error.token
    try:
        expected = set(error.interactive_parser.accepts())
    except LarkError:  # accepts() replays the parser; fall back to Lark's own set
        expected = set(error.expected)
    context = _Context(error, expected)
    message, help = context.explain()
    if token.type == "$END":
        line_count = source.text.count("\n") + 1
        last = source.text.split("\n")[-1]
        span = Span(line_count, len(last) + 1)
    else:
        span = Span(token.line, token.column, max(1, len(token.value)))
    return source.diagnostic(span, message, help=help)


class _Context:
    """What the parser had read when it stopped: the keyword just before, the enclosing block."""

    def __init__(self, error: UnexpectedToken, expected: set[str]):
        self.token = error.token
        self.expected = expected
        stack = list(error.interactive_parser.parser_state.value_stack)
        self.at_start = not stack
        top = stack[-1] if stack else None
        self.previous = top if isinstance(top, Token) else None
        self.block, self.block_token = self._enclosing_block(stack)

    @staticmethod
    def _enclosing_block(stack) -> tuple[str, Token | None]:
        """The keyword of the innermost open `{` (``chip``, ``layer``, ``array``...)."""
        closed = 0      # `}` already read but not reduced yet
        for i in range(len(stack) - 1, -1, -1):
            item = stack[i]
            if isinstance(item, Token) and item.type == "RBRACE":
                closed += 1
            elif isinstance(item, Token) and item.type == "LBRACE" and closed:
                closed -= 1
            elif isinstance(item, Token) and item.type == "LBRACE":
                for j in range(i - 1, -1, -1):
                    before = stack[j]
                    if isinstance(before, Token) and before.type not in ("STRING", "WORD",
                                                                         "DIGITAL_WORD"):
                        return before.value, before
                    if isinstance(before, Tree) and str(before.data) not in ("extends", "_word"):
                        break
                return "", None
        return "", None

    # ---- phrasing ----------------------------------------------------------------------------

    def found(self, article: bool = True) -> str:
        """What was found: "the number `4`" (or "number `4`" after "unexpected")."""
        t = self.token
        the = "the " if article else ""
        if t.type == "$END":
            return f"{the}end of the file"
        if t.type == "NUMBER":
            return f"{the}number `{t.value}`"
        if t.type == "STRING":
            value = t.value if len(t.value) <= 30 else t.value[:27] + '..."'
            return f"{the}string {value}"
        if t.type == "UNIT":
            return f"{the}unit `{t.value}`"
        return f"`{t.value}`"

    def expected_phrases(self) -> list[str]:
        phrases: list[str] = []
        for name in sorted(self.expected, key=_expected_order):
            phrase = _TERMINAL_PHRASES.get(name) or f"`{_keyword_text(name)}`"
            if phrase not in phrases:
                phrases.append(phrase)
        return phrases

    def word_like(self) -> bool:
        return self.token.type not in ("NUMBER", "STRING", "LBRACE", "RBRACE", "$END")

    def explain(self) -> tuple[str, str]:
        prev = self.previous.value if self.previous is not None else ""
        exp, tok = self.expected, self.token
        if tok.type == "NUMBER" or tok.type == "WORD":
            if tok.value.lower() in _NOT_NUMBERS and "NUMBER" in exp:
                return (f"`{tok.value}` is not a number: values must be finite numbers",
                        "write a number such as `0.5`")
        if exp and exp <= {"NUMBER"}:
            return self._after_keyword("a number", prev)
        if exp and exp <= {"STRING"}:
            return self._expected_string(prev)
        if exp == {"LBRACE"}:
            help = ""
            if self.word_like() and (prev, tok.value) in schema.KEYWORDS:
                help = f"write the fields inside braces: `{prev} {{ {tok.value} ... }}`"
            return f"expected `{{` after `{prev}`, found {self.found()}", help
        if exp and exp <= {"WORD", "DIGITAL_WORD", "LBRACE"} and self.previous is not None:
            return self._expected_word(prev)
        if exp == {"EXTENDS", "LBRACE"}:
            return (f"expected `{{` or `extends \"file\"` after the chip name, found {self.found()}",
                    "")
        if self.block in schema.BLOCK_ORDER and "RBRACE" in exp:
            return self._in_block()
        if self.block == "layer" and "RBRACE" in exp:
            return self._in_layer()
        if self.block == "chip" and "RBRACE" in exp:
            return self._in_chip()
        if not self.block and "CHIP" in exp:
            return self._at_top()
        return (f"expected {quoted_list(self.expected_phrases())}, found {self.found()}", "")

    def _after_keyword(self, what: str, prev: str) -> tuple[str, str]:
        if not prev:
            return f"expected {what}, found {self.found()}", ""
        help = ""
        if self.token.type == "$END" or self.token.type == "RBRACE":
            help = f"give `{prev}` a value, e.g. `{prev} {schema.example(self.block, prev)}`"
        return f"expected {what} after `{prev}`, found {self.found()}", help

    def _expected_string(self, prev: str) -> tuple[str, str]:
        help = ""
        if self.word_like():
            help = f'write it in double quotes: "{self.token.value}"'
        if prev == "chip":
            return f"expected the chip's name in double quotes after `chip`, found {self.found()}", \
                help
        if prev == "layer":
            return (f"expected a quoted pattern after `layer` (an op type such as \"Conv\" or a "
                    f"node-name glob such as \"/attn/*\"), found {self.found()}", help)
        if prev == "extends":
            return f"expected a quoted file name after `extends`, found {self.found()}", help
        return f"expected a quoted string after `{prev}`, found {self.found()}", help

    def _expected_word(self, prev: str) -> tuple[str, str]:
        choices = list(schema.word_choices(self.block, prev))
        if "LBRACE" in self.expected:
            choices.append("{")
        what = quoted_list(choices) if choices else "a word"
        help = did_you_mean(self.token.value, choices) if self.word_like() else ""
        return f"expected {what} after `{prev}`, found {self.found()}", help

    def _in_block(self) -> tuple[str, str]:
        block, tok = self.block, self.token
        fields = schema.keywords_of(block)
        takes = f"`{block}` takes {quoted_list(fields, 'and')}"
        if self.word_like() and tok.value in _CHIP_WORDS:
            line = self.block_token.line if self.block_token is not None else "?"
            return (f"`{tok.value}` is not a field of `{block}`",
                    f"is the `}}` that closes `{block}` (line {line}) missing?")
        if self.word_like() and tok.type != "UNIT":
            candidates = fields + (list(schema.ALL_UNITS) if "UNIT" in self.expected else [])
            help = did_you_mean(tok.value, candidates)
            if not help:
                owners = schema.blocks_with_keyword(tok.value)
                help = (f"`{tok.value}` is a field of {quoted_list(owners, 'and')}" if owners
                        else takes)
            what = "a field of" if "UNIT" not in self.expected else "a unit or a field of"
            return f"`{tok.value}` is not {what} `{block}`", help
        prev = self.previous
        if tok.type == "NUMBER" and prev is not None and (block, prev.value) in schema.KEYWORDS:
            field, fixed = schema.KEYWORDS[block, prev.value]
            if fixed is not schema.VALUE:
                hint = ("; to give inputs several bits per cycle write `input { parallel N }`"
                        if (block, prev.value) == ("weight", "parallel") else "")
                return f"`{prev.value}` in `{block}` takes no value, found {self.found()}", \
                    hint.lstrip("; ")
            return (f"unexpected {self.found(False)} in `{block}`: `{prev.value}` already has "
                    "its value", takes)
        if tok.type == "NUMBER" and prev is not None and prev.type in ("NUMBER", "UNIT"):
            return f"unexpected {self.found(False)} in `{block}`: a field takes one value", takes
        if tok.type == "LBRACE":
            return f"unexpected `{{` in `{block}`: blocks do not nest here", takes
        if tok.type == "UNIT" and prev is not None and prev.type == "UNIT":
            return f"unexpected {self.found(False)} in `{block}`: the value already has a unit", ""
        return f"unexpected {self.found(False)} in `{block}`", takes

    def _in_layer(self) -> tuple[str, str]:
        tok = self.token
        allowed = list(schema.LAYER_BLOCKS) + ["digital"]
        if self.word_like():
            if tok.value in ("energy", "attention", "description", "source", "layer"):
                return (f"`{tok.value}` cannot be set per layer",
                        f"a layer override may contain {quoted_list(allowed)}")
            help = did_you_mean(tok.value, allowed)
            if not help and schema.blocks_with_keyword(tok.value):
                owner = schema.blocks_with_keyword(tok.value)[0]
                help = f"write it inside its block: `{owner} {{ {tok.value} ... }}`"
            return (f"`{tok.value}` is not a block that a layer override can change",
                    help or f"a layer override may contain {quoted_list(allowed)}")
        return (f"unexpected {self.found(False)} in a layer override",
                f"a layer override may contain {quoted_list(allowed)}")

    def _in_chip(self) -> tuple[str, str]:
        tok = self.token
        allowed = list(schema.STATEMENTS) + list(_STATEMENT_BLOCKS)
        if self.word_like():
            help = did_you_mean(tok.value, allowed)
            owners = schema.blocks_with_keyword(tok.value)
            if not help and owners:
                help = f"`{tok.value}` belongs inside a block: `{owners[0]} {{ {tok.value} ... }}`"
            return f"`{tok.value}` is not a statement or block of a chip", \
                help or f"a chip contains {quoted_list(allowed)}"
        if tok.type in ("STRING", "NUMBER"):
            return (f"unexpected {self.found(False)}: each value follows its keyword",
                    "a statement takes one value, e.g. `description \"...\"`")
        return (f"unexpected {self.found(False)} in the chip",
                f"a chip contains {quoted_list(allowed)}")

    def _at_top(self) -> tuple[str, str]:
        tok = self.token
        help = did_you_mean(tok.value, ["chip"]) if self.word_like() else ""
        if "$END" in self.expected and not self.at_start:
            return (f"unexpected {self.found(False)} after the end of the chip",
                    help or "a chip file holds one `chip \"name\" { ... }`")
        return (f"expected `chip \"name\" {{ ... }}`, found {self.found()}",
                help or "a chip file starts with `chip \"name\" {`")


_KEYWORD_ORDER = list(dict.fromkeys(
    ["chip", "extends", *schema.STATEMENTS, *_STATEMENT_BLOCKS, "digital"]
    + [kw for (_, kw) in schema.KEYWORDS]))


def _expected_order(name: str) -> tuple[int, int]:
    # Keywords first (in the order the language lists them), then values, braces, end of file.
    rank = {"NUMBER": 1, "STRING": 1, "WORD": 1, "DIGITAL_WORD": 1, "UNIT": 2, "LBRACE": 3,
            "RBRACE": 3, "$END": 4}
    if name in rank:
        return rank[name], 0
    text = _keyword_text(name)
    return 0, _KEYWORD_ORDER.index(text) if text in _KEYWORD_ORDER else len(_KEYWORD_ORDER)

