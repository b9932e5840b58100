{#
    Convert a site-local wall-clock timestamp (no offset) to a UTC timestamp
    (no offset) using the IANA zone name in tz_expr.

    The contract: an ambiguous fall-back time takes the earlier (first)
    occurrence; a time in the spring-forward gap is moved forward by the gap.
    Both DuckDB (ICU) and Postgres already move gap times forward, but they
    read an ambiguous time as its later occurrence, so the conversion checks
    whether one hour (or half an hour, Lord Howe) earlier in UTC still shows
    the same local wall-clock time, and then takes that earlier instant.
#}
{% macro local_to_utc(local_ts_expr, tz_expr) -%}
    {{ return(adapter.dispatch('local_to_utc', 'rto_warehouse')(local_ts_expr, tz_expr)) }}
{%- endmacro %}

{% macro duckdb__local_to_utc(local_ts_expr, tz_expr) -%}
    case
        when timezone({{ tz_expr }}, timezone({{ tz_expr }}, {{ local_ts_expr }}) - interval 60 minute)
            = {{ local_ts_expr }}
            then timezone('UTC', timezone({{ tz_expr }}, {{ local_ts_expr }}) - interval 60 minute)
        when timezone({{ tz_expr }}, timezone({{ tz_expr }}, {{ local_ts_expr }}) - interval 30 minute)
            = {{ local_ts_expr }}
            then timezone('UTC', timezone({{ tz_expr }}, {{ local_ts_expr }}) - interval 30 minute)
        else timezone('UTC', timezone({{ tz_expr }}, {{ local_ts_expr }}))
    end
{%- endmacro %}

{% macro postgres__local_to_utc(local_ts_expr, tz_expr) -%}
    case
        when ((({{ local_ts_expr }}) at time zone {{ tz_expr }}) - interval '60 minutes') at time zone {{ tz_expr }}
            = {{ local_ts_expr }}
            then ((({{ local_ts_expr }}) at time zone {{ tz_expr }}) - interval '60 minutes') at time zone 'UTC'
        when ((({{ local_ts_expr }}) at time zone {{ tz_expr }}) - interval '30 minutes') at time zone {{ tz_expr }}
            = {{ local_ts_expr }}
            then ((({{ local_ts_expr }}) at time zone {{ tz_expr }}) - interval '30 minutes') at time zone 'UTC'
        else (({{ local_ts_expr }}) at time zone {{ tz_expr }}) at time zone 'UTC'
    end
{%- endmacro %}

{#
    A relation (usable in a from clause) listing the time zone names the
    engine knows, as column "name": a site with an unknown zone must not stop
    the build; its times are then taken as UTC.
#}
{% macro known_timezones() -%}
    {{ return(adapter.dispatch('known_timezones', 'rto_warehouse')()) }}
{%- endmacro %}

{% macro duckdb__known_timezones() -%}
    (select name from pg_timezone_names())
{%- endmacro %}

{% macro postgres__known_timezones() -%}
    (select name from pg_timezone_names)
{%- endmacro %}
