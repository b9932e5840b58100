{#
    A string to sort on where a tie is broken by an id or a path ("the
    greatest exception_id", "the smallest approval_id", "the earlier path").
    DESIGN.md and the Python oracle compare strings by code point, which is
    DuckDB's default (binary) collation. Postgres sorts by the database's
    collation instead (en_US and ICU put 'a' before 'B' and '_' before
    letters), so there the expression is compared with the "C" collation:
    byte order, which for UTF-8 is code-point order. Only ORDER BY clauses
    (window orders, limit) use it; equality is the same under any collation.
#}
{% macro code_point_order(string_expr) -%}
    {{ return(adapter.dispatch('code_point_order', 'rto_warehouse')(string_expr)) }}
{%- endmacro %}

{% macro default__code_point_order(string_expr) -%}
    {{ string_expr }}
{%- endmacro %}

{% macro postgres__code_point_order(string_expr) -%}
    ({{ string_expr }}) collate "C"
{%- endmacro %}
