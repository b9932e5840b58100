{#
    Retention and the incremental models (DESIGN.md "Retention and the marts").

    The retention task (rto.retention) purges raw badge events older than the
    window and records every purged file in audit.purges and, with status
    'purged', in audit.source_files. The marts keep the aggregates of those
    weeks: the incremental models never rebuild a day or a week before the
    retention floor, and the covered period keeps starting where the purged
    history started. Both read the audit tables of the build warehouse; on a
    warehouse without them (a PostgreSQL copy of the raw tables only, or before
    the first purge) nothing changes.
#}

{% macro _audit_relation(identifier) -%}
    {#- not while parsing, and not in a unit test (no `this`: its inputs are given rows) -#}
    {%- if not execute or this is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(adapter.get_relation(database=this.database, schema='audit', identifier=identifier)) }}
{%- endmacro %}

{#
    The first Monday on or after the newest purge cutoff, or null: no row before
    it is rebuilt. When a model runs it is read and rendered as a constant
    (a scalar subquery is a nested-loop join with every row of the table it
    filters: 1.4-1.9 s per scan of the badge events at 350,000 employees,
    bench/RESULTS.md 2026-12-08); the subquery while parsing and in `dbt docs
    generate`.
#}
{% macro retention_floor() -%}
    {%- set purges = _audit_relation('purges') -%}
    {%- if purges is none -%}
        cast(null as date)
    {%- else -%}
        {%- set floor -%}
        (
            select {{ week_start(add_days(6, 'max(cutoff)')) }}
            from {{ purges }}
            where target = 'raw.badge_events'
        )
        {%- endset -%}
        {%- if flags.WHICH == 'generate' -%}
            {{ floor }}
        {%- else -%}
            {%- set value = run_query('select cast(' ~ floor ~ ' as ' ~ dbt.type_string() ~ ')').rows[0][0] -%}
            {{ 'cast(null as date)' if value is none else _date_literal(value) }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{# The earliest site-day of a purged badge-event file, or null. #}
{% macro purged_first_event_date() -%}
    {%- set files = _audit_relation('source_files') -%}
    {%- if files is none -%}
        cast(null as date)
    {%- else -%}
        (
            select min(delivery_date)
            from {{ files }}
            where source = 'badge' and entity = 'events' and status = 'purged'
        )
    {%- endif -%}
{%- endmacro %}
