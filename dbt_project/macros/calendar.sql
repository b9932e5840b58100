{#
    Small calendar helpers. Everything returns a DATE on every engine
    (DuckDB's date_trunc and date + interval return timestamps, Postgres'
    date_trunc too), so callers can compare and join on dates safely.
#}

{# Monday of the ISO week containing date_expr. #}
{% macro week_start(date_expr) -%}
    cast({{ dbt.date_trunc('week', date_expr) }} as date)
{%- endmacro %}

{# First day of the calendar month containing date_expr. #}
{% macro month_start(date_expr) -%}
    cast({{ dbt.date_trunc('month', date_expr) }} as date)
{%- endmacro %}

{# date_expr plus a whole number of days (negative to go back), as a date. #}
{% macro add_days(days, date_expr) -%}
    cast({{ dbt.dateadd('day', days, date_expr) }} as date)
{%- endmacro %}

{# ISO day of the week: Monday = 1 ... Sunday = 7. #}
{% macro iso_day_of_week(date_expr) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'rto_warehouse')(date_expr)) }}
{%- endmacro %}

{% macro duckdb__iso_day_of_week(date_expr) -%}
    cast(isodow({{ date_expr }}) as integer)
{%- endmacro %}

{% macro postgres__iso_day_of_week(date_expr) -%}
    cast(extract(isodow from {{ date_expr }}) as integer)
{%- endmacro %}

{% macro default__iso_day_of_week(date_expr) -%}
    cast({{ dbt.date_part('isodow', date_expr) }} as integer)
{%- endmacro %}

{# ISO year and ISO week number (week 1 holds the year's first Thursday). #}
{% macro iso_year(date_expr) -%}
    {{ return(adapter.dispatch('iso_year', 'rto_warehouse')(date_expr)) }}
{%- endmacro %}

{% macro default__iso_year(date_expr) -%}
    cast(extract(isoyear from {{ date_expr }}) as integer)
{%- endmacro %}

{% macro iso_week(date_expr) -%}
    {{ return(adapter.dispatch('iso_week', 'rto_warehouse')(date_expr)) }}
{%- endmacro %}

{% macro default__iso_week(date_expr) -%}
    cast(extract(week from {{ date_expr }}) as integer)
{%- endmacro %}

{#
    A set-returning expression producing one row per day from start_expr to
    end_expr (both inclusive), to be used in a select list:
        select {{ date_series('b.first_day', 'b.last_day') }} as date_day from bounds as b
#}
{% macro date_series(start_expr, end_expr) -%}
    {{ return(adapter.dispatch('date_series', 'rto_warehouse')(start_expr, end_expr)) }}
{%- endmacro %}

{% macro duckdb__date_series(start_expr, end_expr) -%}
    cast(unnest(generate_series(
        cast({{ start_expr }} as timestamp),
        cast({{ end_expr }} as timestamp),
        interval 1 day
    )) as date)
{%- endmacro %}

{% macro postgres__date_series(start_expr, end_expr) -%}
    cast(generate_series(
        cast({{ start_expr }} as timestamp),
        cast({{ end_expr }} as timestamp),
        interval '1 day'
    ) as date)
{%- endmacro %}

{% macro default__date_series(start_expr, end_expr) -%}
    {{ exceptions.raise_compiler_error(
        "date_series is implemented for duckdb and postgres only, not " ~ adapter.type()
    ) }}
{%- endmacro %}

{#
    The lookback of "the N complete ISO weeks before the ISO week containing
    anchor_expr": from (Monday of that week - 7*N days) to (that Monday - 1
    day, a Sunday). The weekly rows inside it are those whose week_start lies
    between lookback_start and lookback_end.
#}
{% macro lookback_start(anchor_expr, weeks_expr=13) -%}
    {{ add_days('-7 * ' ~ weeks_expr, week_start(anchor_expr)) }}
{%- endmacro %}

{% macro lookback_end(anchor_expr) -%}
    {{ add_days(-1, week_start(anchor_expr)) }}
{%- endmacro %}
