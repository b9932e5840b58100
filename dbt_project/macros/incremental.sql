{#
    Incremental builds of the badge-derived models and the weekly compliance
    fact (DESIGN.md "Incremental builds").

    Each night int_rebuild_scope lists what has to be rebuilt:
      scope_kind 'all'      rebuild every row (first build, lost state, a
                            change to a global input);
      scope_kind 'employee' every row of employee_id;
      scope_kind 'date'     every row of date_day (and of week_start, for the
                            weekly models), all employees;
      scope_kind 'from'     every row on or after date_day (the lookback
                            window and an open rebuild_from).
    An incremental model deletes the rows in scope from itself (pre-hook
    rebuild_scope_delete) and appends its query filtered to the same scope
    (strategy append). Deleting the whole scope first is what removes rows
    that must disappear (a backdated termination, a badge reassigned away).
    A delete+insert on the grain found nothing left to delete after the
    pre-hook, yet read the whole table to find it out (about 5 s per model and
    night at 350,000 employees, bench/RESULTS.md 2026-12-08). The query writes
    only rows in scope: its filter and the pre-hook's delete are the same
    macro on the same columns (meta rebuild_scope). The grain tests are
    scoped too, so they would not see a row written twice outside the scope;
    tests/integration/test_incremental.py, which compares every table after
    a run of messy nights with a full build, row for row, would.
#}

{#
    The boolean SQL predicate "this row is in tonight's rebuild scope": its
    day or week is in scope for every employee, or its employee is, and it is
    not before the retention floor. scope: the int_rebuild_scope relation when
    the caller cannot ref() it (a data test).
#}
{% macro in_rebuild_scope(employee_column, date_column=none, week_column=none, scope=none) -%}
    (
        {{ day_in_rebuild_scope(date_column, week_column, scope) }}
        or {{ employee_in_rebuild_scope(employee_column, scope) }}
    )
    {{- after_retention_floor(date_column, week_column) }}
{%- endmacro %}

{#
    The day/week part of the scope alone (every employee's rows of those days),
    never null (join_within_rebuild_scope filters a join's sides by it).

    When the model runs, tonight's scope is known (int_rebuild_scope is built
    before it): the predicate then compares the column with constants, which
    DuckDB evaluates in the scan, instead of joining every row with subqueries
    on the scope table. For the badge events of an increment at 350,000
    employees that was two scans of 309 M rows with a nested-loop join each
    (bench/RESULTS.md, 2026-12-08). While parsing, in `dbt docs generate` and
    in unit tests (see day_scope_constants) the subqueries are rendered; both
    forms select the same rows.
#}
{% macro day_in_rebuild_scope(date_column=none, week_column=none, scope=none) -%}
    {%- set scope = scope if scope is not none else ref('int_rebuild_scope') -%}
    {%- set known = day_scope_constants(scope) -%}
    {%- if known is none -%}
    coalesce(
        exists (select 1 from {{ scope }} where scope_kind = 'all')
        {%- if date_column %}
        or {{ date_column }} in (select date_day from {{ scope }} where scope_kind = 'date')
        or {{ date_column }} >= (select min(date_day) from {{ scope }} where scope_kind = 'from')
        {%- endif %}
        {%- if week_column %}
        or {{ week_column }} in (select week_start from {{ scope }} where scope_kind = 'date')
        or {{ week_column }} >= (select min(week_start) from {{ scope }} where scope_kind = 'from')
        {%- endif %},
        false
    )
    {%- else -%}
        {%- set parts = ['true'] if known.all else [] -%}
        {%- for column, days, first in [
            (date_column, known.dates, known.from_day),
            (week_column, known.weeks, known.from_week),
        ] if column -%}
            {%- if days -%}
                {%- set literals = [] -%}
                {%- for day in days -%}{%- do literals.append(_date_literal(day)) -%}{%- endfor -%}
                {%- do parts.append(column ~ ' in (' ~ (literals | join(', ')) ~ ')') -%}
            {%- endif -%}
            {%- if first -%}
                {%- do parts.append(column ~ ' >= ' ~ _date_literal(first)) -%}
            {%- endif -%}
        {%- endfor -%}
    coalesce({{ parts | join(' or ') if parts else 'false' }}, false)
    {%- endif -%}
{%- endmacro %}

{#
    Tonight's day and week scope as constants, read from the scope relation:
    {all: bool, dates: [...], weeks: [...], from_day, from_week} ('YYYY-MM-DD'
    strings, none when absent). None while parsing, in `dbt docs generate`
    (it compiles every node), for a unit test's fixture relation (a CTE named
    __dbt__cte__*, which a separate query cannot read) and when the relation
    does not exist yet.
#}
{% macro day_scope_constants(scope) -%}
    {%- if not execute or flags.WHICH == 'generate' or '__dbt__cte__' in (scope | string) -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- if scope.identifier is not defined or adapter.get_relation(
            database=scope.database, schema=scope.schema, identifier=scope.identifier
        ) is none -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set query -%}
        select
            scope_kind,
            cast(date_day as {{ dbt.type_string() }}) as date_day,
            cast(week_start as {{ dbt.type_string() }}) as week_start
        from {{ scope }}
        where scope_kind in ('all', 'date', 'from')
    {%- endset -%}
    {%- set known = {'all': false, 'dates': [], 'weeks': [], 'from_day': none, 'from_week': none} -%}
    {%- for kind, day, week in run_query(query).rows -%}
        {%- if kind == 'all' -%}
            {%- do known.update({'all': true}) -%}
        {%- elif kind == 'date' -%}
            {%- if day is not none and day not in known.dates -%}{%- do known.dates.append(day) -%}{%- endif -%}
            {%- if week is not none and week not in known.weeks -%}{%- do known.weeks.append(week) -%}{%- endif -%}
        {%- else -%}
            {#- scope_kind 'from': the earliest one counts, as min() in the subquery form -#}
            {%- if day is not none and (known.from_day is none or day < known.from_day) -%}
                {%- do known.update({'from_day': day}) -%}
            {%- endif -%}
            {%- if week is not none and (known.from_week is none or week < known.from_week) -%}
                {%- do known.update({'from_week': week}) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do known.dates.sort() -%}
    {%- do known.weeks.sort() -%}
    {{ return(known) }}
{%- endmacro %}

{% macro _date_literal(iso_date) -%}
    {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', iso_date | string) -%}
        {{ exceptions.raise_compiler_error("not an ISO date from the scope table: " ~ iso_date) }}
    {%- endif -%}
    cast('{{ iso_date }}' as date)
{%- endmacro %}

{#
    " and <column> between the first and the last day in scope", or "" when
    every day is (or the scope is not known yet). Implied by
    day_in_rebuild_scope, so adding it changes no result; a conjunct of the
    where clause of its own, it lets DuckDB skip the row groups of other days
    by their min/max (zone maps) instead of reading every row.
#}
{% macro day_scope_range(date_column, scope=none) -%}
    {%- set scope = scope if scope is not none else ref('int_rebuild_scope') -%}
    {%- set known = day_scope_constants(scope) -%}
    {%- if known is not none and not known.all -%}
        {%- set firsts = known.dates + ([known.from_day] if known.from_day else []) -%}
        {%- if firsts -%}
    and {{ date_column }} >= {{ _date_literal(firsts | min) }}
            {%- if not known.from_day %} and {{ date_column }} <= {{ _date_literal(known.dates | max) }}{% endif -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#
    A join of a per-day table and a per-person table, restricted to tonight's
    scope with each side filtered by its own part before the join: the days in
    scope for every person, then the people in scope on the other days (two
    disjoint parts, unioned). One predicate across both tables cannot be pushed
    below the join, which would then run over the whole history every night.
    join_sql: the select, with {days} and {people} where the two tables go;
    outside an incremental run the tables go in whole.
#}
{% macro join_within_rebuild_scope(join_sql, days, date_column, people, employee_column) -%}
    {%- if is_incremental() -%}
        {#- rendered once each: they read the scope table and audit.purges -#}
        {%- set day_in_scope = day_in_rebuild_scope(date_column) -%}
        {%- set after_floor = after_retention_floor(date_column) -%}
        {%- set days_in_scope -%}
            (select * from {{ days }}
            where {{ day_in_scope }}
            {{- day_scope_range(date_column) }}
            {{- after_floor }})
        {%- endset -%}
        {%- set other_days -%}
            (select * from {{ days }}
            where not {{ day_in_scope }}
            {{- after_floor }})
        {%- endset -%}
        {%- set people_in_scope -%}
            (select * from {{ people }} where {{ employee_in_rebuild_scope(employee_column) }})
        {%- endset -%}
        {{ join_sql | replace('{days}', days_in_scope) | replace('{people}', people) }}
        union all
        {{ join_sql | replace('{days}', other_days) | replace('{people}', people_in_scope) }}
    {%- else -%}
        {{ join_sql | replace('{days}', days) | replace('{people}', people) }}
    {%- endif -%}
{%- endmacro %}

{% macro employee_in_rebuild_scope(employee_column, scope=none) -%}
    {%- set scope = scope if scope is not none else ref('int_rebuild_scope') -%}
    {{ employee_column }} in (select employee_id from {{ scope }} where scope_kind = 'employee')
{%- endmacro %}

{# " and <not a day or week whose badge events the retention task purged>" (macros/retention.sql) #}
{% macro after_retention_floor(date_column=none, week_column=none) -%}
    {%- set floor_column = date_column or week_column %}
    {%- set floor = retention_floor() | trim %}
    {%- if floor_column and floor != 'cast(null as date)' %}
    and coalesce({{ floor_column }} >= {{ floor }}, true)
    {%- endif %}
{%- endmacro %}

{#
    Pre-hook of every incremental model: on an incremental run, delete the rows
    in scope before the new ones are inserted (same transaction). The scope's
    columns are the model's meta rebuild_scope: {employee: <column>, and
    date: <column> or week: <column>}; its data tests read the same meta
    (macros/testing.sql).
#}
{% macro rebuild_scope_delete() -%}
    {%- if is_incremental() -%}
        {%- set columns = model.config.meta.rebuild_scope -%}
        delete from {{ this }}
        where {{ in_rebuild_scope(columns.employee, columns.get('date'), columns.get('week')) }}
    {%- else -%}
        select 1 as nothing_to_delete
    {%- endif -%}
{%- endmacro %}

{#
    The state the previous successful build left behind (int_rebuild_state_files,
    int_rebuild_state_builds). They are read as relations, not through ref():
    they are built after the fact table, from tonight's scope, so a ref() here
    would be a cycle. None when the table does not exist yet (first build).
#}
{% macro rebuild_state_relation(identifier) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(adapter.get_relation(
        database=this.database,
        schema=generate_schema_name('intermediate', none),
        identifier=identifier,
    )) }}
{%- endmacro %}

{#
    The rows of an HR or badge snapshot table that differ between the snapshot
    the last build used and tonight's newest one (symmetric difference on the
    listed columns). tie_partition: the columns within which the file's line
    order breaks ties in the models; the row's rank inside that group is
    compared too, so a reordering that changes a tie-break is a change, while
    rows merely moving down the file are not.
#}
{% macro snapshot_changes(source_name, table_name, columns, state_files, tie_partition=none) -%}
    {%- set cols = columns | join(', ') -%}
    {%- set tie -%}
        {%- if tie_partition %}, row_number() over (
            partition by {{ tie_partition | join(', ') }} order by _line_number
        ) as tie_order{% endif -%}
    {%- endset -%}
    select {{ cols }} from (
        (
            select {{ cols }}{{ tie }}
            from {{ source(source_name, table_name) }}
            where _delivery_date = (
                select max(delivery_date) from {{ ref('int_rebuild_files') }}
                where source_table = '{{ table_name }}'
            )
                and _file_id in (
                    select file_id from {{ ref('int_rebuild_files') }}
                    where source_table = '{{ table_name }}'
                )
            except
            select {{ cols }}{{ tie }}
            from {{ source(source_name, table_name) }}
            where _delivery_date = (
                select max(delivery_date) from {{ state_files }}
                where source_table = '{{ table_name }}'
            )
                and _file_id in (
                    select file_id from {{ state_files }}
                    where source_table = '{{ table_name }}'
                )
        )
        union all
        (
            select {{ cols }}{{ tie }}
            from {{ source(source_name, table_name) }}
            where _delivery_date = (
                select max(delivery_date) from {{ state_files }}
                where source_table = '{{ table_name }}'
            )
                and _file_id in (
                    select file_id from {{ state_files }}
                    where source_table = '{{ table_name }}'
                )
            except
            select {{ cols }}{{ tie }}
            from {{ source(source_name, table_name) }}
            where _delivery_date = (
                select max(delivery_date) from {{ ref('int_rebuild_files') }}
                where source_table = '{{ table_name }}'
            )
                and _file_id in (
                    select file_id from {{ ref('int_rebuild_files') }}
                    where source_table = '{{ table_name }}'
                )
        )
    ) as changed
{%- endmacro %}

{# A fingerprint of the policy timeline seed: a changed timeline rebuilds everything. #}
{% macro policies_fingerprint(policies_relation) -%}
    {%- set parts = [] -%}
    {%- for column in ['policy_id', 'kind', 'effective_from', 'effective_to',
                       'required_days_per_week', 'min_presence_minutes'] -%}
        {%- do parts.append("coalesce(cast(" ~ column ~ " as " ~ dbt.type_string() ~ "), '~')") -%}
    {%- endfor -%}
    (
        select {{ dbt.hash(dbt.listagg(parts | join(" || '|' || "), "';'", "order by policy_id")) }}
        from {{ policies_relation }}
    )
{%- endmacro %}

{#
    Pre-hook of stg_badge__events: on an incremental run, drop the rows of files
    that are no longer in raw.badge_events (purged by the retention task, which
    also deletes them itself; this catches a purge made before the table existed).
#}
{% macro badge_events_drop_removed_files() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where source_file_id not in (
            select distinct _file_id from {{ source('badge', 'badge_events') }}
        )
    {%- else -%}
        select 1 as nothing_to_delete
    {%- endif -%}
{%- endmacro %}

{#
    A predicate that every value of `key` found in the given files of
    `relation` passes: `key` within one of the files' (min, max) ranges,
    overlapping ranges merged (in the database's own order). A night compares
    its new badge files' event ids with the whole raw history (311 M rows at
    350,000 employees); the constant ranges let the scan drop almost every row
    before the comparison (bench/RESULTS.md, 2026-12-07). "false" when the
    files hold no key, "true" (no narrowing) when there are more than
    `max_ranges` ranges, while parsing, and in unit tests (their inputs are
    fixture CTEs, named __dbt__cte__*, that a separate query cannot read),
    and in `dbt docs generate`: it compiles every node, and these queries over
    the raw events took 49 s of the reports task at L (bench/RESULTS.md); the
    docs show `true` where a run inlines the night's ranges.

    files_where: which files, a predicate on `r._file_id` alone (r is the
    relation's distinct file ids): it is evaluated on those few thousand ids
    first, and only their rows are read. Evaluated on every row instead, it
    made DuckDB probe the 311 M raw events against the staging table's files,
    reading every event id: 37 s of a night at L for 4 new files, 1 s this way
    (bench/RESULTS.md, 2026-12-07 13:18). One range per _file_id before merging.
    column: the key as the returned predicate names it (default `key`).
    file_column: the relation's file id column, `_file_id` in the raw tables;
    files_where still names it `r._file_id`.
#}
{% macro key_ranges_of_files(
    relation, key, files_where, column=none, max_ranges=64, file_column='_file_id'
) -%}
    {%- if not execute or flags.WHICH == 'generate' or '__dbt__cte__' in (relation | string) -%}
        {{- return('true') -}}
    {%- endif -%}
    {%- set query -%}
        with files as (
            select r._file_id
            from (select distinct {{ file_column }} as _file_id from {{ relation }}) as r
            where {{ files_where }}
        ),
        file_ranges as (
            select min({{ key }}) as lo, max({{ key }}) as hi
            from {{ relation }}
            where {{ file_column }} in (select files._file_id from files) and {{ key }} is not null
            group by {{ file_column }}
        ),
        ordered as (
            select lo, hi, max(hi) over (
                order by lo, hi rows between unbounded preceding and 1 preceding
            ) as hi_before
            from file_ranges
        ),
        grouped as (
            select lo, hi, sum(case when hi_before is null or lo > hi_before then 1 else 0 end)
                over (order by lo, hi rows between unbounded preceding and current row) as part
            from ordered
        )
        select min(lo) as lo, max(hi) as hi from grouped group by part order by 1
    {%- endset -%}
    {%- set ranges = run_query(query).rows -%}
    {%- if ranges | length == 0 -%}
        {{- return('false') -}}
    {%- elif ranges | length > max_ranges -%}
        {{- return('true') -}}
    {%- endif -%}
    {%- set parts = [] -%}
    {%- for lo, hi in ranges -%}
        {%- do parts.append(
            (column or key) ~ " between '" ~ (lo | string | replace("'", "''")) ~ "' and '"
            ~ (hi | string | replace("'", "''")) ~ "'"
        ) -%}
    {%- endfor -%}
    {{- return('(' ~ parts | join(' or ') ~ ')') -}}
{%- endmacro %}

{#
    The months of int_calendar_months whose row can change when a day in
    tonight's scope changed (int_employee_months_banded): each month whose
    window, from the start of its lookback weeks (lookback_start of the month
    start) to its last day, holds a 'date' day or reaches the 'from' day. A
    month covered for the first time tonight ends after the last build's
    as-of date, so on or after the 'from' day: it is always in scope. Used
    only when not months_rebuilt_whole, which answers for 'all' and 'months'.
#}
{% macro month_in_rebuild_scope(month_column) -%}
    {{ month_column }} in ({{ _months_in_rebuild_scope() }})
{%- endmacro %}

{% macro _months_in_rebuild_scope() -%}
    {%- set scope = ref('int_rebuild_scope') -%}
    select months.month_start
    from {{ ref('int_calendar_months') }} as months
    inner join {{ scope }} as scope_days
        on scope_days.date_day <= months.month_end
        and (
            scope_days.scope_kind = 'from'
            or (
                scope_days.scope_kind = 'date'
                and scope_days.date_day
                    >= {{ lookback_start('months.month_start', var('compliance_lookback_weeks')) }}
            )
        )
{%- endmacro %}

{#
    True when tonight's incremental run of int_employee_months_banded rebuilds
    the whole table: the scope is 'all' or 'months', or it holds more than half
    of the covered months. Its pre-hook then deletes every row and the model
    runs the full build's query. With the scope filter on the employee-months,
    DuckDB plans the department joins for a few rows; over all 7.4 M rows at
    350,000 employees that plan ran out of memory under 4GB, where the
    unfiltered query takes 48 s (bench/RESULTS.md). Asked of the database when
    the model runs (false while parsing).
#}
{% macro months_rebuilt_whole() -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set query -%}
        select
            exists (select 1 from {{ ref('int_rebuild_scope') }} where scope_kind in ('all', 'months'))
            or 2 * (select count(distinct month_start) from ({{ _months_in_rebuild_scope() }}) as in_scope)
                > (select count(*) from {{ ref('int_calendar_months') }})
    {%- endset -%}
    {{ return(run_query(query).rows[0][0]) }}
{%- endmacro %}

{#
    Pre-hook of int_employee_months_banded: on an incremental run, delete the
    months in scope and every month of the employees in scope (every row when
    months_rebuilt_whole).
#}
{% macro rebuild_scope_delete_months(employee_column, month_column) -%}
    {%- if is_incremental() and months_rebuilt_whole() -%}
        delete from {{ this }}
    {%- elif is_incremental() -%}
        delete from {{ this }}
        where {{ month_in_rebuild_scope(month_column) }}
            or {{ employee_in_rebuild_scope(employee_column) }}
    {%- else -%}
        select 1 as nothing_to_delete
    {%- endif -%}
{%- endmacro %}

{#
    The settings the attrition months' compliance bands are computed with, as
    int_rebuild_state_builds records them: a change rebuilds every month.
#}
{% macro band_settings() -%}
    {%- for name in ['compliance_lookback_weeks', 'band_high_min_rate_pct', 'band_medium_min_rate_pct'] -%}
        {{ name }}={{ var(name) }}{{ ' ' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{#
    Incremental strategy of stg_badge__events: dbt's delete+insert on the
    unique key, with one more predicate on its delete, the key ranges of the
    rows to insert (one range per source file, merged; macro
    key_ranges_of_files). Every key of those rows is inside them, so the same
    rows are deleted; as constants they let DuckDB skip the table's row groups
    by their min/max instead of comparing 311 M event ids at 350,000 employees
    with the night's (14.4 s of the model's 31 s a night, bench/RESULTS.md
    2026-12-08). No narrowing ("true") beyond 64 ranges.
#}
{% macro get_incremental_delete_insert_in_key_ranges_sql(arg_dict) -%}
    {%- set key = arg_dict['unique_key'] -%}
    {%- if key is not string -%}
        {{ exceptions.raise_compiler_error(
            "incremental_strategy delete_insert_in_key_ranges takes one unique_key column"
        ) }}
    {%- endif -%}
    {%- set ranges = key_ranges_of_files(
        arg_dict['temp_relation'], key, 'true', file_column='source_file_id'
    ) -%}
    {%- set predicates = (arg_dict['incremental_predicates'] or []) + ([ranges] if ranges != 'true' else []) -%}
    {{- get_delete_insert_merge_sql(
        arg_dict['target_relation'], arg_dict['temp_relation'], key,
        arg_dict['dest_columns'], predicates
    ) -}}
{%- endmacro %}
