{#
    What tonight's incremental build rebuilds (macro in_rebuild_scope reads it;
    DESIGN.md "Incremental builds" explains each rule and its limits).

    Compared with the state the last successful build recorded
    (int_rebuild_state_files / int_rebuild_state_builds):
    - 'all'      no previous state, the covered period's start moved, the
                 policy timeline seed changed, or a global HR input changed
                 (sites, the org tree, team policies, org-unit exceptions);
    - 'employee' employees whose rows changed between the snapshot the last
                 build used and tonight's: employees, job history, leave,
                 employee exceptions, badge assignments (old and new holder);
    - 'date'     the office dates of every event id in a badge file not seen
                 by the last build (all rows of that id: a re-sent id can
                 change which row is kept), the dates of changed holidays,
                 and the days from var rebuild_from to var rebuild_to;
    - 'months'   every month of int_employee_months_banded: the band
                 settings (var compliance_lookback_weeks, band_*) differ
                 from the last build's, or it recorded none;
    - 'from'     the lookback window: from (the older of tonight's and the
                 last build's as-of date) minus var badge_lookback_days, or
                 from the first day the last build's coverage had not reached
                 (the Monday after its last complete week) when that is
                 earlier; and rebuild_from when rebuild_to is not given.
#}

{%- set lookback_days = var('badge_lookback_days') | int -%}
{%- set rebuild_from = var('rebuild_from', none) -%}
{%- set rebuild_to = var('rebuild_to', none) -%}
{%- for name, value in [('rebuild_from', rebuild_from), ('rebuild_to', rebuild_to)] -%}
    {%- if value and not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', value | string) -%}
        {{ exceptions.raise_compiler_error(
            "var " ~ name ~ " must be a date YYYY-MM-DD, got " ~ (value | string)
        ) }}
    {%- endif -%}
{%- endfor -%}
{%- if rebuild_to and not rebuild_from -%}
    {{ exceptions.raise_compiler_error("var rebuild_to needs rebuild_from as well (YYYY-MM-DD)") }}
{%- endif -%}
{%- if rebuild_from and rebuild_to and (rebuild_from | string) > (rebuild_to | string) -%}
    {{ exceptions.raise_compiler_error(
        "var rebuild_from (" ~ rebuild_from ~ ") is after rebuild_to (" ~ rebuild_to ~ ")"
    ) }}
{%- endif -%}
{%- set state_files = rebuild_state_relation('int_rebuild_state_files') -%}
{%- set state_builds = rebuild_state_relation('int_rebuild_state_builds') -%}
{%- set has_state = state_files is not none and state_builds is not none -%}
{#- a state table older than the band_settings column: settings unknown, months rebuilt -#}
{%- set has_band_settings = has_state and (
    adapter.get_columns_in_relation(state_builds)
    | selectattr('name', 'equalto', 'band_settings') | list | length > 0
) -%}

with

rebuild_files as (

    select * from {{ ref('int_rebuild_files') }}

),

bounds as (

    select * from {{ ref('int_calendar_bounds') }}

),

rto_policies as (

    select * from {{ ref('rto_policies') }}

),

{% if has_state %}

last_build as (

    select * from {{ state_builds }}
    where build_number = (select max(build_number) from {{ state_builds }})

),

changed_exceptions as (

    {{ snapshot_changes(
        'hr', 'hr_exceptions',
        ['exception_id', 'scope', 'subject_id', 'required_days_per_week', 'valid_from', 'valid_to'],
        state_files, ['exception_id'],
    ) }}

),

global_changes as (

    select 'coverage_start moved' as reason
    from bounds
    cross join last_build
    where bounds.coverage_start is distinct from last_build.coverage_start

    union all

    select 'policy timeline changed' as reason
    from last_build
    where last_build.policies_fingerprint is distinct from {{ policies_fingerprint('rto_policies') }}

    union all

    select 'sites changed' as reason
    from (
        {{ snapshot_changes('hr', 'hr_sites', ['site_id', 'country', 'timezone'], state_files) }}
    ) as changed_sites

    union all

    select 'org tree changed' as reason
    from (
        {{ snapshot_changes('hr', 'hr_org_units', ['org_unit_id', 'parent_id', 'kind'], state_files) }}
    ) as changed_org_units

    union all

    select 'team policies changed' as reason
    from (
        {{ snapshot_changes(
            'hr', 'hr_team_policies',
            ['org_unit_id', 'required_days_per_week', 'valid_from', 'valid_to'],
            state_files, ['org_unit_id', 'valid_from'],
        ) }}
    ) as changed_team_policies

    union all

    select 'org-unit exceptions changed' as reason
    from changed_exceptions
    where scope is distinct from 'employee'

),

changed_employees as (

    select employee_id, 'employees changed' as reason
    from (
        {{ snapshot_changes(
            'hr', 'hr_employees',
            ['employee_id', 'hire_date', 'termination_date', 'termination_reason',
             'worker_type', 'home_site_id', 'country'],
            state_files, ['employee_id'],
        ) }}
    ) as changed_rows

    union all

    select employee_id, 'job history changed' as reason
    from (
        {{ snapshot_changes(
            'hr', 'hr_job_history',
            ['employee_id', 'effective_date', 'job_level', 'job_family', 'org_unit_id',
             'manager_id', 'event'],
            state_files, ['employee_id', 'effective_date'],
        ) }}
    ) as changed_rows

    union all

    select employee_id, 'leave changed' as reason
    from (
        {{ snapshot_changes(
            'hr', 'hr_leave',
            ['leave_id', 'employee_id', 'start_date', 'end_date', 'leave_type'], state_files,
        ) }}
    ) as changed_rows

    union all

    select subject_id as employee_id, 'employee exception changed' as reason
    from changed_exceptions
    where scope = 'employee'

    union all

    select employee_id, 'badge assignments changed' as reason
    from (
        {{ snapshot_changes(
            'badge', 'badge_assignments',
            ['badge_id', 'employee_id', 'badge_type', 'valid_from', 'valid_to'], state_files,
        ) }}
    ) as changed_rows

),

new_event_files as (

    select file_id from rebuild_files
    where source_table = 'badge_events'
        and file_id not in (
            select file_id from {{ state_files }} where source_table = 'badge_events'
        )

),

new_event_ids as (

    select distinct event_id
    from {{ source('badge', 'badge_events') }}
    where _file_id in (select file_id from new_event_files)

),

changed_dates as (

    -- every row of a touched event id: a re-sent id with an earlier
    -- delivery date can replace the row that was kept so far. The new files'
    -- id ranges narrow the scan of every raw event first: without them DuckDB
    -- built its hash table on the 311 M raw events, even on a night without
    -- a new badge file (60 s at 350,000 employees). Their rows are those of
    -- new_event_files, the same condition, which a separate query needs.
    select distinct
        cast(cast(badge_events.event_time as timestamp) as date) as date_day,
        'new badge events' as reason
    from {{ source('badge', 'badge_events') }} as badge_events
    where {{ key_ranges_of_files(
            source('badge', 'badge_events'), 'event_id',
            "r._file_id in (select file_id from " ~ ref('int_rebuild_files')
            ~ " where source_table = 'badge_events' and file_id not in (select file_id from "
            ~ state_files ~ " where source_table = 'badge_events'))",
            column='badge_events.event_id',
        ) }}
        and badge_events.event_id in (select event_id from new_event_ids)
        and badge_events.event_time is not null

    union all

    select distinct
        cast(date as date) as date_day,
        'holidays changed' as reason
    from (
        {{ snapshot_changes('hr', 'hr_holidays', ['country', 'date', 'name'], state_files) }}
    ) as changed_holidays

),

window_start as (

    -- and never after the first day the last build had not covered yet
    -- (coverage ends on the last Sunday on or before the as-of date): a week
    -- that completes tonight is rebuilt with all its days
    select
        least(
            {{ add_days(-lookback_days, 'least(bounds.as_of_date, last_build.as_of_date)') }},
            {{ week_start(add_days(1, 'last_build.as_of_date')) }}
        ) as date_day,
        'lookback window' as reason
    from bounds
    cross join last_build

),

{% endif %}

scope_rows as (

    {% if has_state %}

    select distinct
        'all' as scope_kind,
        cast(null as {{ dbt.type_string() }}) as employee_id,
        cast(null as date) as date_day,
        reason
    from global_changes

    union all

    select distinct
        'employee' as scope_kind,
        employee_id,
        cast(null as date) as date_day,
        reason
    from changed_employees
    where employee_id is not null

    union all

    select
        'date' as scope_kind,
        cast(null as {{ dbt.type_string() }}) as employee_id,
        date_day,
        reason
    from changed_dates
    where date_day is not null

    union all

    select
        'from' as scope_kind,
        cast(null as {{ dbt.type_string() }}) as employee_id,
        date_day,
        reason
    from window_start
    where date_day is not null

    union all

    select
        'months' as scope_kind,
        cast(null as {{ dbt.type_string() }}) as employee_id,
        cast(null as date) as date_day,
        'band settings changed' as reason
    from last_build
    {% if has_band_settings %}
    where last_build.band_settings is distinct from '{{ band_settings() }}'
    {% endif %}

    {% else %}

    select
        'all' as scope_kind,
        cast(null as {{ dbt.type_string() }}) as employee_id,
        cast(null as date) as date_day,
        'no previous build' as reason

    {% endif %}

    {% if rebuild_from and rebuild_to %}

    union all

    select
        'date' as scope_kind,
        cast(null as {{ dbt.type_string() }}) as employee_id,
        {{ date_series("cast('" ~ rebuild_from ~ "' as date)", "cast('" ~ rebuild_to ~ "' as date)") }}
            as date_day,
        'vars rebuild_from/rebuild_to' as reason

    {% elif rebuild_from %}

    union all

    select
        'from' as scope_kind,
        cast(null as {{ dbt.type_string() }}) as employee_id,
        cast('{{ rebuild_from }}' as date) as date_day,
        'var rebuild_from' as reason

    {% endif %}

),

final as (

    select
        cast(scope_kind as {{ dbt.type_string() }}) as scope_kind,
        cast(employee_id as {{ dbt.type_string() }}) as employee_id,
        cast(date_day as date) as date_day,
        {{ week_start('date_day') }} as week_start,
        cast(reason as {{ dbt.type_string() }}) as reason
    from scope_rows

)

select * from final
