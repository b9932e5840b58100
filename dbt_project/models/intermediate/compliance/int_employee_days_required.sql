{#
    One row per employee and available day with its day_requirement and
    whether it was an office day.

    day_requirement = the required days per week of the most specific rule in
    force that day:
      0. before the first company policy: 0, whatever else is valid;
    1. an employee exception (scope employee, subject = the employee);
      2. else an org-unit exception on the employee's org unit that day or its
         nearest ancestor that has a valid one;
      3. else, while the company policy is director_discretion, the team policy
         of the nearest org unit (self, then ancestors) that has one, none = 0;
      4. else the company policy's required days (weekly_days policies; 0 for
         any other kind).
    Several rules valid at once on one subject: the newest valid_from wins,
    then the greatest id, then the later line of the file (team policies have
    no id). Validity is half-open (valid_from <= day < valid_to), a null
    bound is open. Rules without required_days_per_week are ignored.

    An office day is an available day with at least one counting badge event;
    when the policy in force sets min_presence_minutes, last event minus first
    event (both UTC) must also be at least that many minutes.
#}

{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ rebuild_scope_delete() }}",
    meta={'rebuild_scope': {'employee': 'employee_id', 'date': 'date_day'}},
) }}

-- depends_on: {{ ref('int_rebuild_scope') }}


with

-- not materialized: read three times, and DuckDB would otherwise copy every
-- employee-day (about 180 M at 350,000 employees) before reading it
available_days as not materialized (

    select * from {{ ref('int_employee_days_available') }}
    {% if is_incremental() %}
    where {{ in_rebuild_scope('employee_id', 'date_day') }}
    {% endif %}

),

org_unit_ancestors as (

    select * from {{ ref('int_org_units_ancestors') }}

),

exceptions as (

    select * from {{ ref('stg_hr__exceptions') }}

),

team_policies as (

    select * from {{ ref('stg_hr__team_policies') }}

),

office_presence as (

    -- filtered like the employee-days it is joined to (same employee and day,
    -- so the same rows match). Unfiltered, an increment built the join's hash
    -- table on every office day of the history (77.7 M rows at 350,000
    -- employees, 4.2 M filtered); the increments that ran out of memory under
    -- the 4GB cap failed in this query (bench/RESULTS.md)
    select * from {{ ref('int_office_presence_daily') }}
    {% if is_incremental() %}
    where {{ in_rebuild_scope('employee_id', 'office_date') }}
    {% endif %}

),

employee_exception_matches as (

    select
        available_days.employee_id,
        available_days.date_day,
        exceptions.exception_id,
        exceptions.required_days_per_week,
        row_number() over (
            partition by available_days.employee_id, available_days.date_day
            order by
                exceptions.valid_from desc nulls last,
                {{ code_point_order('exceptions.exception_id') }} desc nulls last,
                exceptions.source_line_number desc nulls last
        ) as match_rank
    from available_days
    inner join exceptions
        on exceptions.scope = 'employee'
        and available_days.employee_id = exceptions.subject_id
        and (exceptions.valid_from is null or exceptions.valid_from <= available_days.date_day)
        and (exceptions.valid_to is null or available_days.date_day < exceptions.valid_to)
    where exceptions.required_days_per_week is not null

),

available_dates as (

    -- rules on org units depend only on (org unit, day): they are matched on the
    -- days of the employee-days (about 500), not on the employee-days themselves
    -- nor on their (org unit, day) pairs (21.7 M at 350,000 employees)
    select distinct
        date_day,
        policy_kind
    from available_days

),

org_unit_exception_rules as (

    -- every org unit inherits the exceptions of itself and its ancestors
    select
        org_unit_ancestors.org_unit_id,
        org_unit_ancestors.depth,
        exceptions.exception_id,
        exceptions.required_days_per_week,
        exceptions.valid_from,
        exceptions.valid_to,
        exceptions.source_line_number
    from org_unit_ancestors
    inner join exceptions
        on exceptions.scope = 'org_unit'
        and org_unit_ancestors.ancestor_org_unit_id = exceptions.subject_id
    where exceptions.required_days_per_week is not null

),

org_unit_exception_matches as (

    select
        org_unit_exception_rules.org_unit_id,
        available_dates.date_day,
        org_unit_exception_rules.exception_id,
        org_unit_exception_rules.required_days_per_week,
        row_number() over (
            partition by org_unit_exception_rules.org_unit_id, available_dates.date_day
            order by
                org_unit_exception_rules.depth,
                org_unit_exception_rules.valid_from desc nulls last,
                {{ code_point_order('org_unit_exception_rules.exception_id') }} desc nulls last,
                org_unit_exception_rules.source_line_number desc nulls last
        ) as match_rank
    from org_unit_exception_rules
    inner join available_dates
        on (
            org_unit_exception_rules.valid_from is null
            or org_unit_exception_rules.valid_from <= available_dates.date_day
        )
        and (
            org_unit_exception_rules.valid_to is null
            or available_dates.date_day < org_unit_exception_rules.valid_to
        )

),

team_policy_rules as (

    select
        org_unit_ancestors.org_unit_id,
        org_unit_ancestors.depth,
        team_policies.required_days_per_week,
        team_policies.valid_from,
        team_policies.valid_to,
        team_policies.source_line_number
    from org_unit_ancestors
    inner join team_policies
        on org_unit_ancestors.ancestor_org_unit_id = team_policies.org_unit_id
    where team_policies.required_days_per_week is not null

),

team_policy_matches as (

    select
        team_policy_rules.org_unit_id,
        available_dates.date_day,
        team_policy_rules.required_days_per_week,
        row_number() over (
            partition by team_policy_rules.org_unit_id, available_dates.date_day
            order by
                team_policy_rules.depth,
                team_policy_rules.valid_from desc nulls last,
                team_policy_rules.source_line_number desc nulls last
        ) as match_rank
    from team_policy_rules
    inner join available_dates
        on (
            team_policy_rules.valid_from is null
            or team_policy_rules.valid_from <= available_dates.date_day
        )
        and (
            team_policy_rules.valid_to is null
            or available_dates.date_day < team_policy_rules.valid_to
        )
    where available_dates.policy_kind = 'director_discretion'

),

org_unit_day_rules as (

    -- the winning org-unit exception and team policy of each (org unit, day) that
    -- has either, side by side: one join of the employee-days instead of two
    select
        coalesce(unit_exceptions.org_unit_id, unit_team_policies.org_unit_id) as org_unit_id,
        coalesce(unit_exceptions.date_day, unit_team_policies.date_day) as date_day,
        unit_exceptions.org_unit_id is not null as has_org_unit_exception,
        unit_exceptions.exception_id as org_unit_exception_id,
        unit_exceptions.required_days_per_week as org_unit_exception_days,
        unit_team_policies.required_days_per_week as team_policy_days
    from (
        select * from org_unit_exception_matches
        where match_rank = 1
    ) as unit_exceptions
    full outer join (
        select * from team_policy_matches
        where match_rank = 1
    ) as unit_team_policies
        on unit_exceptions.org_unit_id = unit_team_policies.org_unit_id
        and unit_exceptions.date_day = unit_team_policies.date_day

),

resolved as (

    select
        available_days.employee_id,
        available_days.date_day,
        available_days.week_start,
        available_days.org_unit_id,
        available_days.policy_id,
        available_days.policy_kind,
        available_days.min_presence_minutes,
        case
            when available_days.policy_id is null then 'no_policy'
            when employee_exception_matches.match_rank is not null then 'employee_exception'
            when org_unit_day_rules.has_org_unit_exception then 'org_unit_exception'
            when available_days.policy_kind = 'director_discretion' then 'team_policy'
            else 'company_policy'
        end as requirement_source,
        case
            when available_days.policy_id is not null
                then coalesce(
                    employee_exception_matches.exception_id,
                    org_unit_day_rules.org_unit_exception_id
                )
        end as exception_id,
        case
            -- before the first company policy there is no requirement at all
            when available_days.policy_id is null then 0
            when employee_exception_matches.match_rank is not null
                then employee_exception_matches.required_days_per_week
            when org_unit_day_rules.has_org_unit_exception
                then org_unit_day_rules.org_unit_exception_days
            when available_days.policy_kind = 'director_discretion'
                then coalesce(org_unit_day_rules.team_policy_days, 0)
            when available_days.policy_kind = 'weekly_days'
                then coalesce(available_days.policy_required_days, 0)
            else 0
        end as day_requirement,
        -- the day's first and last events only decide this flag: they stay in
        -- int_office_presence_daily, not copied to every employee-day
        office_presence.employee_id is not null
        and (
            available_days.min_presence_minutes is null
            or office_presence.last_event_utc >= {{ dbt.dateadd(
                'minute', 'available_days.min_presence_minutes', 'office_presence.first_event_utc'
            ) }}
        ) as is_office_day
    from available_days
    left join employee_exception_matches
        on available_days.employee_id = employee_exception_matches.employee_id
        and available_days.date_day = employee_exception_matches.date_day
        and employee_exception_matches.match_rank = 1
    left join org_unit_day_rules
        on available_days.org_unit_id = org_unit_day_rules.org_unit_id
        and available_days.date_day = org_unit_day_rules.date_day
    left join office_presence
        on available_days.employee_id = office_presence.employee_id
        and available_days.date_day = office_presence.office_date

),

final as (

    select
        employee_id,
        date_day,
        week_start,
        org_unit_id,
        policy_id,
        requirement_source,
        exception_id,
        cast(day_requirement as integer) as day_requirement,
        min_presence_minutes,
        is_office_day
    from resolved

)

select * from final
