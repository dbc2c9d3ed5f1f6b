"""Reading tool calls out of a local model's text, including the ways small models get it wrong."""

from __future__ import annotations

from agent.parsing import ParsedCall, parse_reply


def test_tool_call_blocks_are_read_and_removed_from_the_text() -> None:
    reply = parse_reply('Sure.\n<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call>'
                        '\n<tool_call>\n{"name": "b", "arguments": {}}\n</tool_call>')
    assert reply.calls == [ParsedCall("a", {"x": 1}), ParsedCall("b", {})]
    assert reply.text == "Sure." and not reply.invalid


def test_fenced_and_bare_json_are_accepted() -> None:
    fenced = parse_reply('Here:\n```json\n{"name": "a", "arguments": {"x": 1}}\n```')
    assert fenced.calls == [ParsedCall("a", {"x": 1})] and fenced.text == "Here:"
    bare = parse_reply('{"name": "a", "arguments": "{\\"x\\": 2}"}')
    assert bare.calls == [ParsedCall("a", {"x": 2})]
    openai = parse_reply('{"type": "function", "function": {"name": "a", "arguments": {}}}')
    assert openai.calls == [ParsedCall("a", {})]


def test_small_model_slips_are_repaired() -> None:
    missing_brace = parse_reply('{"name": "a", "arguments": {"image": "x.tif", "k": {"m": 1}}')
    assert missing_brace.calls == [ParsedCall("a", {"image": "x.tif", "k": {"m": 1}})]
    single_quotes = parse_reply("<tool_call>{'name': 'a', 'arguments': {'x': 1}}</tool_call>")
    assert single_quotes.calls == [ParsedCall("a", {"x": 1})]
    lines = parse_reply('{"name": "a", "arguments": {}}\n{"name": "b", "arguments": {}}\n'
                        '{"name": "b", "arguments": {}}\n{"name": "b", "argu')
    assert [c.name for c in lines.calls] == ["a", "b"]  # repeats dropped
    doubled = parse_reply('<tool_call>\n{{"name": "a", "arguments": {"image": "x.tif"}}}}\n'
                          '</tool_call>')
    assert doubled.calls == [ParsedCall("a", {"image": "x.tif"})]


def test_unreadable_calls_are_reported_with_the_reason() -> None:
    broken = parse_reply('<tool_call>{"name": "a", "arguments": {"x": }</tool_call>')
    assert not broken.calls and "not valid JSON" in broken.invalid[0].error
    no_name = parse_reply('<tool_call>{"arguments": {}}</tool_call>')
    assert 'a "name" string' in no_name.invalid[0].error
    bad_args = parse_reply('<tool_call>{"name": "a", "arguments": [1, 2]}</tool_call>')
    assert "must be a JSON object" in bad_args.invalid[0].error


def test_plain_answers_stay_plain() -> None:
    for text in ["Otsu picks a threshold that separates two classes.",
                 "Use {braces} in names", '```python\nprint("name")\n```']:
        reply = parse_reply(text)
        assert not reply.calls and not reply.invalid and reply.text == text.strip()
