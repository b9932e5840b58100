{#
    required_days = (sum of day_requirement over the week's available days + 4) // 5

    Integer floor division on every engine: DuckDB's "/" on integers returns a
    double, so it needs "//"; Postgres' "/" on integers already truncates
    (and the operands are never negative, so truncation is the floor).
#}
{% macro required_days(requirement_sum) -%}
    {{ return(adapter.dispatch('required_days', 'rto_warehouse')(requirement_sum)) }}
{%- endmacro %}

{% macro duckdb__required_days(requirement_sum) -%}
    cast((cast({{ requirement_sum }} as integer) + 4) // 5 as integer)
{%- endmacro %}

{% macro postgres__required_days(requirement_sum) -%}
    cast((cast({{ requirement_sum }} as integer) + 4) / 5 as integer)
{%- endmacro %}

{% macro default__required_days(requirement_sum) -%}
    cast(floor((cast({{ requirement_sum }} as integer) + 4) / 5.0) as integer)
{%- endmacro %}
