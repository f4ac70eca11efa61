#!/usr/bin/env python3
"""Regenerates the reference outputs for tests/test_template.c with Python jinja2.

The environment is built exactly as transformers' apply_chat_template builds it
(transformers/utils/chat_template_utils.py: ImmutableSandboxedEnvironment(trim_blocks=True,
lstrip_blocks=True, extensions=[loopcontrols]) + tojson = json.dumps(ensure_ascii=False, ...),
raise_exception, strftime_now) and rendered with the same keyword arguments
(messages, tools (None when absent), documents=None, add_generation_prompt, bos_token, eos_token,
**extra). strftime_now is pinned to a fixed UTC instant so the outputs are reproducible.

Outputs (all reference data made by jinja2, never by Alloy):
  cases.json            the chat cases (template name, messages, tools, flags, tokens)
  <case>.expected       jinja2's rendering of each chat case, byte for byte
  unit_cases.json       small templates + contexts with jinja2's output ("expected") or
                        the fact that jinja2 raised ("error": true)
Run: python3 gen_expected.py   (needs jinja2 >= 3.1; made with jinja2 3.1.6)
"""
import json
import os
from datetime import datetime, timezone

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
NOW = 1727308800  # 2024-09-26T00:00:00Z


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.fromtimestamp(NOW, timezone.utc).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


SYS = {"role": "system", "content": "You are a helpful assistant."}
U1 = {"role": "user", "content": "Hello! Who are you?"}
A1 = {"role": "assistant", "content": "  I am an assistant. Grüße, 你好 🌍  "}
U2 = {"role": "user", "content": "What is the capital of France?\n"}

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}]
TOOL_CALL = {"id": "call12345", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}
TU = {"role": "user", "content": "What's the weather in Paris? Answer in °C."}
TA = {"role": "assistant", "content": "", "tool_calls": [TOOL_CALL]}
TR = {"role": "tool", "tool_call_id": "call12345", "name": "get_weather",
      "content": "{\"temperature\": 22.5, \"condition\": \"sunny\"}"}

BASIC = [SYS, U1, A1, U2]
NOSYS = [U1, A1, U2]
TOOLCONV = [SYS, TU, TA, TR]

TOKENS = {
    "llama-3.1": ("<|begin_of_text|>", "<|eot_id|>"),
    "llama-3.2": ("<|begin_of_text|>", "<|eot_id|>"),
    "qwen2.5": ("", "<|im_end|>"),
    "qwen3": ("", "<|im_end|>"),
    "mistral-nemo": ("<s>", "</s>"),
    "gemma-2": ("<bos>", "<eos>"),
    "gemma-3": ("<bos>", "<eos>"),
    "phi-3.5": ("<s>", "<|endoftext|>"),
    "nemotron-nano-v2": ("<s>", "</s>"),
    "chatml": ("<s>", "<|im_end|>"),
}


def case(name, tmpl, messages, tools=None, agp=True, extra=None, error=False):
    bos, eos = TOKENS[tmpl]
    return {"name": name, "template": tmpl, "messages": messages, "tools": tools,
            "add_generation_prompt": agp, "extra": extra or {}, "bos": bos, "eos": eos,
            "now": NOW, "error": error}


QWEN3_REASON = [SYS, U1,
                {"role": "assistant", "content": "I am Qwen.", "reasoning_content": "\nThe user asks who I am.\n"},
                U2,
                {"role": "assistant", "content": "<think>\nParis is the capital.\n</think>\n\nParis."}]
NEMO_THINK = [{"role": "system", "content": "Be brief. /no_think"}, U1, A1, U2]

CASES = [
    case("llama-3.1.basic", "llama-3.1", BASIC),
    case("llama-3.1.tools", "llama-3.1", TOOLCONV, tools=TOOLS),
    case("llama-3.1.builtin", "llama-3.1", BASIC, extra={"builtin_tools": ["code_interpreter", "brave_search"], "date_string": "01 Jan 2025"}),
    case("llama-3.2.basic", "llama-3.2", BASIC),
    case("llama-3.2.tools", "llama-3.2", TOOLCONV, tools=TOOLS),
    case("llama-3.2.tools_in_system", "llama-3.2", TOOLCONV, tools=TOOLS, extra={"tools_in_user_message": False}),
    case("qwen2.5.basic", "qwen2.5", BASIC),
    case("qwen2.5.nosys", "qwen2.5", NOSYS, agp=False),
    case("qwen2.5.tools", "qwen2.5", TOOLCONV, tools=TOOLS),
    case("qwen3.basic", "qwen3", BASIC),
    case("qwen3.no_thinking", "qwen3", BASIC, extra={"enable_thinking": False}),
    case("qwen3.thinking", "qwen3", BASIC, extra={"enable_thinking": True}),
    case("qwen3.reasoning", "qwen3", QWEN3_REASON, agp=False),
    case("qwen3.tools", "qwen3", TOOLCONV, tools=TOOLS, extra={"enable_thinking": False}),
    case("mistral-nemo.basic", "mistral-nemo", BASIC),
    case("mistral-nemo.tools", "mistral-nemo", [TU, TA, TR], tools=TOOLS),
    case("mistral-nemo.bad_roles", "mistral-nemo", [U1, U2], error=True),
    case("gemma-2.basic", "gemma-2", NOSYS),
    case("gemma-2.system_rejected", "gemma-2", BASIC, error=True),
    case("gemma-3.basic", "gemma-3", BASIC),
    case("gemma-3.multimodal", "gemma-3", [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": " Describe this. "}]}]),
    case("phi-3.5.basic", "phi-3.5", BASIC),
    case("phi-3.5.no_prompt", "phi-3.5", BASIC, agp=False),
    case("nemotron-nano-v2.basic", "nemotron-nano-v2", BASIC),
    case("nemotron-nano-v2.no_think", "nemotron-nano-v2", NEMO_THINK),
    case("nemotron-nano-v2.tools", "nemotron-nano-v2", TOOLCONV, tools=TOOLS),
    case("nemotron-nano-v2.final_assistant", "nemotron-nano-v2", BASIC + [{"role": "assistant", "content": "<think>x</think> Paris."}], agp=False),
    case("chatml.basic", "chatml", BASIC),
]

# (name, template, context)
UNIT = [
    ("text_only", "Hello\nworld\n", {}),
    ("print_values", "{{ 1 }} {{ 1.0 }} {{ 2.5e-7 }} {{ 1e20 }} {{ true }} {{ none }} {{ 'a' }} {{ [1, 'b', none, true] }} {{ {'k': 'v', 'n': 1.5} }} {{ (1,) }} {{ undefined_var }}|", {}),
    ("print_repr_quotes", "{{ [\"it's\", 'say \"hi\"', 'a\\nb'] }}", {}),
    ("trim_blocks", "{% if true %}\nyes\n{% endif %}\nend", {}),
    ("lstrip_blocks", "  {% if true %}\n  x\n  {% endif %}\n  {{ 'y' }}\n", {}),
    ("ws_control", "a  {{- ' b ' -}}  c\n  {%- if true -%}  d  {%- endif -%}  e", {}),
    ("lstrip_plus", "  {%+ if true %}x{% endif %}", {}),
    ("comments", "a {# hidden #} b\n  {# line #}\nc{#- x -#}   d", {}),
    ("raw_block", "{% raw %}{{ not evaluated }}{% endraw %}", {}),
    ("for_loop_vars", "{% for x in items %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}:{{ x }};{% endfor %}", {"items": ["a", "b", "c"]}),
    ("for_prev_next", "{% for x in [1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }} {% endfor %}", {}),
    ("for_else", "{% for x in [] %}x{% else %}empty{% endfor %}", {}),
    ("for_filter", "{% for x in range(10) if x % 3 == 0 %}{{ x }}/{{ loop.length }} {% endfor %}", {}),
    ("for_unpack_items", "{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}{% for k, v in d|items %}{{ k }}{% endfor %}", {"d": {"b": 1, "a": [2], "c": None}}),
    ("for_dict_keys", "{% for k in d %}{{ k }}{% endfor %}", {"d": {"z": 1, "y": 2}}),
    ("for_string", "{% for c in 'héllo' %}[{{ c }}]{% endfor %}", {}),
    ("loop_scope", "{% set x = 1 %}{% for i in [1,2] %}{% set x = i * 10 %}{{ x }}{% endfor %}{{ x }}", {}),
    ("namespace", "{% set ns = namespace(count=0, found=false) %}{% for i in [1,2,3] %}{% set ns.count = ns.count + i %}{% if i == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }} {{ ns.found }}", {}),
    ("break_continue", "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("nested_loops", "{% for a in [1,2] %}{% for b in 'xy' %}{{ a }}{{ b }}{{ loop.index }}{% endfor %}{{ loop.index }};{% endfor %}", {}),
    ("if_elif", "{% for v in [0, 1, 2, 3] %}{% if v == 0 %}zero{% elif v == 1 %}one{% elif v is even %}even{% else %}other{% endif %} {% endfor %}", {}),
    ("set_block", "{% set x %}  hi {{ 1 + 1 }} {% endset %}[{{ x }}]{% set y | upper %}abc{% endset %}{{ y }}", {}),
    ("set_tuple", "{% set a, b = 1, 'two' %}{{ a }}{{ b }}", {}),
    ("macro", "{% macro greet(name, punct='!') %}Hello {{ name }}{{ punct }}{% endmacro %}{{ greet('Bob') }} {{ greet('Al', punct='?') }} {{ greet(name='Zed') }}", {}),
    ("macro_caller", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ 1 }}{% endcall %}", {}),
    ("filter_block", "{% filter upper %}hello {{ 'world' }}{% endfilter %}", {}),
    ("string_escapes", "{{ 'a\\tb\\\\c\\'d\\u00e9\\x41' }}|{{ \"q\\\"q\" }}|{{ 'x' 'y' }}", {}),
    ("arith", "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 6 / 3 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 0.1 + 0.2 }} {{ 3 - 5 }} {{ -3|abs }} {{ 'ab' * 3 }} {{ [1] + [2, 3] }}", {}),
    ("concat", "{{ 'a' ~ 1 ~ none ~ true ~ undefined_thing }} {{ 'x' + 'y' }}", {}),
    ("compare", "{{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ [1,2] == [1,2] }} {{ {'a':1} == {'a':1} }} {{ 'b' in 'abc' }} {{ 2 not in [1,3] }} {{ 'k' in {'k': 1} }} {{ none == none }} {{ 1 != 2 }} {{ true == 1 }}", {}),
    ("logic", "{{ true and 'x' }} {{ false or 'y' }} {{ not 0 }} {{ '' or [] or 'z' }} {{ none and 1 }} {{ not (1 == 1) }} {{ not 1 == 2 }}", {}),
    ("ternary", "{{ 'yes' if x else 'no' }} {{ 'yes' if y else 'no' }} [{{ 'a' if false }}]", {"x": [1], "y": []}),
    ("slicing", "{{ s[1:] }} {{ s[:-1] }} {{ s[::-1] }} {{ l[1:3] }} {{ l[::-1] }} {{ l[::2] }} {{ l[-2:] }} {{ s[-1] }} {{ l[-1] }} {{ l[10:] }} {{ 'héllo'[1:3] }}", {"s": "abcdef", "l": [1, 2, 3, 4, 5]}),
    ("subscript_attr", "{{ d.a }} {{ d['a'] }} {{ d.b.c }} {{ d['b']['c'] }} {{ l[0].x }} {{ l.0.x }} {{ d.missing is defined }} {{ l[9] is defined }}", {"d": {"a": 1, "b": {"c": 2}}, "l": [{"x": "X"}]}),
    ("tests", "{{ x is defined }} {{ y is defined }} {{ y is undefined }} {{ none is none }} {{ 's' is string }} {{ {} is mapping }} {{ [] is iterable }} {{ 's' is iterable }} {{ 1 is number }} {{ 1.5 is number }} {{ true is boolean }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 1 is integer }} {{ 1.0 is float }} {{ 'a' is sequence }} {{ x is not none }} {{ 2 is eq 2 }} {{ 'a' is in 'abc' }} {{ true is true }} {{ 'abc' is lower }}", {"x": 1}),
    ("filters_str", "{{ '  hi  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ 'Hello'|upper }}|{{ 'Hello'|lower }}|{{ 'hello world'|capitalize }}|{{ 'hello big-world (x)'|title }}|{{ 'aXa'|replace('a', 'b') }}|{{ 'aaa'|replace('a', 'b', 2) }}|{{ 42|string }}|{{ 'abc'|length }}|{{ 'héllo'|count }}|{{ 'a b  c'|wordcount }}|{{ '<a href=\"x\">'|e }}", {}),
    ("filters_num", "{{ '42'|int }} {{ '4.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 3.9|int }} {{ '2.5'|float }} {{ 3|float }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 2.1|round(0, 'ceil') }} {{ 2.9|round(method='floor') }} {{ -4|abs }} {{ [1,2,3]|sum }} {{ [3,1,2]|max }} {{ [3,1,2]|min }}", {}),
    ("filters_list", "{{ [3,1,2]|sort }} {{ ['b','A','c']|sort }} {{ [3,1,2]|sort(reverse=true) }} {{ l|first }} {{ l|last }} {{ l|join(', ') }} {{ l|join }} {{ [1,2,1,3]|unique|list }} {{ ['a','A','b']|unique|list }} {{ l|reverse|list }} {{ 'abc'|list }} {{ l|length }} {{ d|dictsort }} {{ d|dictsort(by='value', reverse=true) }}", {"l": ["x", "y", "z"], "d": {"b": 2, "a": 3, "C": 1}}),
    ("filters_default", "{{ x|default('dflt') }} {{ none|default('d2') }} {{ ''|default('d3', true) }} {{ y|d('d4') }} {{ 0|default(5, boolean=true) }}", {"y": "set"}),
    ("filters_select", "{{ users|selectattr('active')|map(attribute='name')|join(',') }} {{ users|rejectattr('active')|map(attribute='name')|list }} {{ users|selectattr('role', 'equalto', 'admin')|list|length }} {{ users|map(attribute='missing', default='?')|list }} {{ [1,2,3,4]|select('odd')|list }} {{ [1,2,3,4]|reject('even')|list }} {{ ['a','b']|map('upper')|list }} {{ users|selectattr('role', 'defined')|list|length }} {{ users|map(attribute='tags.0')|list }}", {"users": [{"name": "ann", "active": True, "role": "admin", "tags": ["t1"]}, {"name": "bob", "active": False, "tags": ["t2"]}, {"name": "cy", "active": True, "role": "user", "tags": ["t3"]}]}),
    ("tojson", "{{ d|tojson }}\n{{ d|tojson(indent=2) }}\n{{ [1, [], {}, 'é\"\\n\\t\\u0001'] |tojson }}\n{{ d|tojson(sort_keys=true) }}\n{{ 'ü'|tojson(ensure_ascii=true) }} {{ 1.0|tojson }} {{ 1e100|tojson }} {{ none|tojson }} {{ d|tojson(separators=(',', ':')) }}", {"d": {"b": [1, 2.5, True, None], "a": {"x": "y"}, "e": []}}),
    ("tojson_indent_nested", "{{ t|tojson(indent=4) }}", {"t": TOOLS[0]}),
    ("methods_str", "{{ ' x '.strip() }}|{{ 'xay'.lstrip('x') }}|{{ 'xay'.rstrip('y') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}|{{ 'Hi'.upper() }}{{ 'Hi'.lower() }}|{{ 'hello world'.title() }}|{{ 'hELLO'.capitalize() }}|{{ 'aXbX'.replace('X', '-') }}|{{ 'abcb'.find('b') }}{{ 'abcb'.rfind('b') }}{{ 'abcb'.count('b') }}|{{ '-'.join(['a','b']) }}|{{ 'a\\nb\\r\\nc'.splitlines() }}|{{ '123'.isdigit() }}", {}),
    ("methods_dict", "{{ d.keys()|list }} {{ d.values()|list }} {{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 'def') }} {% for k, v in d.items() %}{{ k }}{{ v }}{% endfor %}", {"d": {"a": 1, "b": 2}}),
    ("functions", "{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ range(5, 0, -2)|list }} {{ dict(a=1, b='x') }} {{ namespace(a=1).a }}", {}),
    ("strftime", "{{ strftime_now('%Y-%m-%d %H:%M') }} {{ strftime_now('%d %b %Y') }} {{ strftime_now is defined }}", {}),
    ("undefined_behaviour", "[{{ nope }}][{{ nope|length }}][{{ nope|default('d') }}][{% for x in nope %}x{% endfor %}][{{ nope is defined }}][{{ 'x' in nope }}][{{ nope|join(',') }}][{{ none.attr is defined }}][{{ d.missing }}]", {"d": {}}),
    ("in_operator_nested", "{% if 'tool_calls' in m %}yes{% else %}no{% endif %}{% if 'tool_calls' in m2 %}yes{% else %}no{% endif %}", {"m": {"role": "assistant", "tool_calls": []}, "m2": {"role": "user"}}),
    ("unicode", "{{ s|length }} {{ s|upper }} {{ s[1] }} {{ s|tojson }} {{ s|reverse }}", {"s": "añ中😀"}),
    ("is_mapping_iterable", "{{ c is mapping }}{{ c is iterable }}{{ c is string }}|{{ d is mapping }}{{ d is iterable }}", {"c": "text", "d": {"a": 1}}),
    ("dict_literal_order", "{% set d = {'z': 1, 'a': 2} %}{{ d|tojson }} {% for k in d %}{{ k }}{% endfor %}", {}),
    ("int_float_json", "{{ a }} {{ b }} {{ a + b }} {{ [a, b]|tojson }} {{ c / 2 }}", {"a": 3, "b": 2.0, "c": 5}),
    ("indent_filter", "{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(width='> ', blank=true) }}", {}),
    ("loop_cycle", "{% for i in range(5) %}{{ loop.cycle('a', 'b') }}{% endfor %}", {}),
    ("with_block", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", {}),
    ("string_concat_plus_filter_prec", "{{ 'a' + ' B ' | trim + 'c' }} {{ [1,2,3]|length - 1 }} {{ -1|abs }} {{ 'x' ~ (2 + 3) }} {{ 'a' + 'b' ~ 'c' }}", {}),
    ("unicode_special_case", "{{ 'ß'.upper() }} {{ 'straße'|upper }} {{ 'İ'.lower()|length }} {{ 'ßa'.capitalize() }}", {}),
    ("tuple_print", "{{ 1, 2 }} {{ (1, 'a') }}", {}),
    ("macro_scope", "{% set g = 'G' %}{% macro m(x) %}{{ x }}{{ g }}{% set g = 'inner' %}{{ g }}{% endmacro %}{{ m(1) }}{{ g }}", {}),
    # errors jinja2 raises: Alloy must fail too
    ("err_raise", "{{ raise_exception('boom') }}", {}),
    ("err_attr_of_undefined", "{{ nope.attr }}", {}),
    ("err_item_of_undefined", "{{ nope[0] }}", {}),
    ("err_add_str_int", "{{ 'a' + 1 }}", {}),
    ("err_div_zero", "{{ 1 // 0 }}", {}),
    ("err_unknown_filter", "{{ 1|nosuchfilter }}", {}),
    ("err_tojson_undefined", "{{ nope|tojson }}", {}),
    ("err_syntax_unclosed", "{% if true %}x", {}),
    ("err_syntax_bad_expr", "{{ 1 + }}", {}),
    ("err_syntax_unknown_tag", "{% frobnicate %}", {}),
    ("err_range_too_big", "{% for i in range(1000000) %}{% endfor %}", {}),
    ("err_undefined_plus", "{{ nope + 1 }}", {}),
]

# Differential snippets (whitespace control, scoping, numbers, errors); expected from jinja2.
EXTRA = [
 ("{{ '%s-%s'|format(1, 'a') }}", {}),
 ("{% for a, b in [[1,2],[3,4]] %}{{ a }}{{ b }}{% endfor %}", {}),
 ("abc {% if true %}x{% endif %}\n  {% if true %}y{% endif %} z", {}),
 ("{%- if true %}\n  a\n{%- endif %}\n", {}),
 ("a\n\n", {}),
 ("{{ '{{' }}{{ '}}' }}", {}),
 ("{% macro f(a, b=a) %}{{ a }}{{ b }}{% endmacro %}{{ f(1) }}{{ f(1, 2) }}", {}),
 ("{{ 10 / 4 }} {{ 1e3 }} {{ 1.5e300 * 1e10 }} {{ -0.0 }} {{ 123456789.123456789 }} {{ 1/3 }}", {}),
 ("{{ [1,2,3] | join('-') }} {{ none | string }} {{ 'a' in ['a'] }}", {}),
 ("{{ (m | selectattr('role', 'eq', 'user') | list | last).content }}", {"m": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "assistant"}]}),
 ("x\n  {#- c #}\ny", {}),
 ("{%- for x in y -%}{{ x }}{%- else -%}E{%- endfor -%}", {}),
 ("{{ 3 is divisibleby(3) }} {{ '\\u1234' }} {{ x is sameas false }}", {"x": False}),
 ("{% set d = {'a': {'b': [1, {'c': 'd'}]}} %}{{ d.a.b[1].c }}{{ d['a']['b'][0] }}", {}),
 ("{{ messages[-1]['content'] }} {{ messages[0].content[:3] }}", {"messages": [{"content": "hello"}, {"content": "bye"}]}),
 ("  {% for i in [1,2] %}\n    {{ i }}\n  {% endfor %}\n", {}),
 ("{% if x %}\n{% endif %}   \n  {{ 'a' }}   {% if true %}  \n b{% endif %}", {}),
 ("{{ 'Hello World'.split(' ')[1].upper() }} {{ ' a '.strip().title() }}", {}),
 ("{{ x | tojson(indent=2) }}", {"x": {"a": [], "b": {}, "c": [{}], "d": "\u2028\u00e9\x7f"}}),
 ("{{ x }} {{ x | tojson }}", {"x": 1e-7}),
 ("{{ x }} {{ y }} {{ x + y }} {{ x * 1.0 }}", {"x": 9007199254740993, "y": 0.1}),
 ("{% set x = 5 %}{% if true %}{% set x = 6 %}{% endif %}{{ x }}", {}),
 ("{% for i in range(3) %}{% set x = i %}{% endfor %}[{{ x }}]", {}),
 ("{{ 'abc'[5] }}|{{ [1][3] }}|{{ {'a':1}['b'] }}|{{ none['x'] }}", {}),
 ("{{ 1 if none else 2 }} {{ (none or 'd') }} {{ '' if 0 }}", {}),
 ("{{ ['b', 'a', 'C'] | sort(case_sensitive=true) }} {{ [{'n': 2}, {'n': 1}] | sort(attribute='n') }}", {}),
 ("{{ 'x' ~ [1, 'a'] ~ {'k': none} }}", {}),
 ("{{ '  multi\n  line  ' | trim }}|{{ '\t\nx\u3000' | trim }}", {}),
 ("{% for k, v in {'a': 1, 'b': 2} | dictsort %}{{ k }}{{ v }}{% endfor %}", {}),
 ("{{ range(3) | list | tojson }} {{ range(0) | list }} {{ [1,2,3][1:] | length }}", {}),
 ("{% set a = [] %}{{ a | first }}|{{ a | last }}|{{ a | length }}|{{ a | join }}", {}),
 ("{{ 'A' if 'b' in 'abc' and not false or 0 else 'B' }}", {}),
 ("{% raw -%}   x {{ y }}   {%- endraw %}", {}),
 ("{{ x.content is string }} {{ x['tool_calls'] is defined }}", {"x": {"content": None}}),
 ("{%- set ns = namespace(a=[]) -%}{%- set ns.a = ns.a + [1] -%}{{ ns.a }}", {}),
 ("{{ 2 ** 0.5 }} {{ 7 // 2.0 }} {{ -7 % 2.5 }} {{ 5 % -3 }}", {}),
 ("{{ [0.1, 1e16, 1e15, 12345678901234567890.0, 5e-324, 1.7976931348623157e308] }}", {}),
 ("{{ x }}\n  {% if true %}a{% endif %}", {"x": 1}),
 ("{{ x }}  {% if true %}a{% endif %}", {"x": 1}),
 ("{% if true -%}\n  {% if true %}  a{% endif %}{% endif %}", {}),
 ("{% if true %}  \n  x{% endif %}", {}),
 ("\n  {#- c -#}  \n{% if 1 %}\n\ty\n{% endif %}\n", {}),
 ("a {%- if true %} b {% endif -%} c", {}),
 ("{% for x in 'ab' %}\n\t{{ x }}\n{% endfor %}", {}),
 ("  {{- 'x' }}", {}),
 ("{%+ if true %}x{%+ endif +%}\ny", {}),
 ("{% if true %}\r\nx\r\n{% endif %}\r\n", {}),
 ("{{ x['a'] }}", {"x": None}),
 ("{{ x.y.z }}", {"x": {}}),
 ("{{ [] | first | default('d') }}", {}),
 ("{{ y | length }}", {"y": 5}),
 ("{{ 'a' < 1 }}", {}),
 ("{% for x in 5 %}{% endfor %}", {}),
 ("{{ undefined_fn() }}", {}),
 ("{{ 'a'.nosuchmethod() }}", {}),
 ("{% set x.y = 1 %}", {}),
 ("{{ 'a' * 'b' }}", {}),
 ("{% macro m() %}x{% endmacro %}{{ m(1) }}", {}),
 ("{{ [1, 2] | sum(start=10) }} {{ ['a','b']|map('length')|list }}", {}),
 ("{{ {'a': 1} | items | list }} {{ ({'a': 1}.items() | list)[0][1] }}", {}),
 ("{% for a in [1] %}{% for b in [2] %}{{ loop.index }}{% endfor %}{{ loop.index }}{% endfor %}", {}),
 ("{% set x = 1 %}{% macro f() %}{{ x }}{% endmacro %}{% set x = 2 %}{{ f() }}", {}),
 ("{{ 'abc' | replace('', '-') }} {{ 'aaa' | replace('a', '', 1) }}", {}),
 ("{{ 'a,b' .split(',') }}", {}),
 ("{{ 1 in [1.0] }} {{ true in [1] }} {{ '1' == 1 }}", {}),
 ("{{ -2 ** 2 }} {{ (-2) ** 2 }} {{ 2 ** -1 }} {{ not true == false }}", {}),
 ("{{ 'x' if true else 'y' if false else 'z' }}", {}),
 ("{{ [1,2,3][::-1][0] }} {{ 'abc'[-2:] }} {{ 'abc'[5:1:-1] }} {{ [1,2,3,4,5][4:0:-2] }}", {}),
 ("{{ 'tool' in messages[0] }}", {"messages": [{"tool": 1}]}),
 ("{{ x is iterable }} {{ x is sequence }} {{ x is mapping }}", {"x": None}),
 ("{% for x in [1, 2] %}{{ x }}{% if loop.last %}.{% else %},{% endif %}{% endfor %}", {}),
]
UNIT += [("extra_%02d" % i, t, c) for i, (t, c) in enumerate(EXTRA)]


def main():
    env = make_env()
    cases_out = []
    for c in CASES:
        src = open(os.path.join(HERE, c["template"] + ".jinja"), encoding="utf-8").read()
        kwargs = dict(messages=c["messages"], tools=c["tools"], documents=None,
                      add_generation_prompt=c["add_generation_prompt"], bos_token=c["bos"], eos_token=c["eos"])
        kwargs.update(c["extra"])
        path = os.path.join(HERE, c["name"] + ".expected")
        try:
            out = env.from_string(src).render(**kwargs)
            assert not c["error"], c["name"] + " was expected to raise"
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(out)
        except jinja2.exceptions.TemplateError as e:
            assert c["error"], c["name"] + ": " + str(e)
            if os.path.exists(path):
                os.remove(path)
        cases_out.append(c)
    with open(os.path.join(HERE, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases_out, f, ensure_ascii=False, indent=1)
        f.write("\n")

    units = []
    for name, tmpl, ctx in UNIT:
        entry = {"name": name, "template": tmpl, "context": ctx}
        try:
            entry["expected"] = env.from_string(tmpl).render(**ctx)
            assert not name.startswith("err_"), name + " did not raise"
        except Exception as e:  # TemplateSyntaxError, UndefinedError, TypeError, ZeroDivisionError, ...
            assert name.startswith(("err_", "extra_")), name + ": " + repr(e)
            entry["error"] = True
            entry["python_error"] = type(e).__name__ + ": " + str(e)
        units.append(entry)
    with open(os.path.join(HERE, "unit_cases.json"), "w", encoding="utf-8") as f:
        json.dump({"generator": "jinja2 " + jinja2.__version__ + " (HF apply_chat_template environment)",
                   "now": NOW, "cases": units}, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
