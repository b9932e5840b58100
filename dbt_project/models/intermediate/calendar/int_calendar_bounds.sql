{#
    The covered period, one row (DESIGN.md "Dates and the covered period"):
    - as_of_date: the newest HR delivery date (over all ten HR tables);
    - coverage_start: the first Monday on or after the earliest badge event date
      (purged events included: see macros/retention.sql);
    - coverage_end: the last Sunday on or before as_of_date, so that the
      weekly fact holds complete ISO weeks only;
    - spine_start / spine_end: the span of the calendar (dim_date), from the
      Monday before the first company policy or badge event, whichever is
      earlier, to the Sunday of the as-of week.
#}

with

hr_sites as (

    select * from {{ ref('stg_hr__sites') }}

),

hr_org_units as (

    select * from {{ ref('stg_hr__org_units') }}

),

hr_employees as (

    select * from {{ ref('stg_hr__employees') }}

),

hr_job_history as (

    select * from {{ ref('stg_hr__job_history') }}

),

hr_leaves as (

    select * from {{ ref('stg_hr__leaves') }}

),

hr_holidays as (

    select * from {{ ref('stg_hr__holidays') }}

),

hr_team_policies as (

    select * from {{ ref('stg_hr__team_policies') }}

),

hr_exceptions as (

    select * from {{ ref('stg_hr__exceptions') }}

),

hr_nominations as (

    select * from {{ ref('stg_hr__nominations') }}

),

hr_approvals as (

    select * from {{ ref('stg_hr__approvals') }}

),

badge_events as (

    select * from {{ ref('stg_badge__events') }}

),

rto_policies as (

    select * from {{ ref('rto_policies') }}

),

hr_deliveries as (

    -- the newest delivery date of any HR table
    select max(delivery_date) as delivery_date from hr_sites
    union all
    select max(delivery_date) as delivery_date from hr_org_units
    union all
    select max(delivery_date) as delivery_date from hr_employees
    union all
    select max(delivery_date) as delivery_date from hr_job_history
    union all
    select max(delivery_date) as delivery_date from hr_leaves
    union all
    select max(delivery_date) as delivery_date from hr_holidays
    union all
    select max(delivery_date) as delivery_date from hr_team_policies
    union all
    select max(delivery_date) as delivery_date from hr_exceptions
    union all
    select max(delivery_date) as delivery_date from hr_nominations
    union all
    select max(delivery_date) as delivery_date from hr_approvals

),

as_of as (

    select max(delivery_date) as as_of_date from hr_deliveries

),

badge_coverage as (

    -- purged history still counts: the covered period does not move when the
    -- retention task purges old events (macros/retention.sql)
    select
        least(
            min(office_date),
            coalesce({{ purged_first_event_date() }}, min(office_date))
        ) as first_event_date
    from badge_events

),

first_policy as (

    select min(effective_from) as first_policy_date from rto_policies

),

bounds as (

    select
        as_of.as_of_date,
        badge_coverage.first_event_date,
        first_policy.first_policy_date,
        -- first Monday on or after the earliest badge event date
        {{ week_start(add_days(6, 'badge_coverage.first_event_date')) }} as coverage_start,
        -- last Sunday on or before the as-of date
        {{ add_days(-1, week_start(add_days(1, 'as_of.as_of_date'))) }} as coverage_end,
        {{ week_start('least(badge_coverage.first_event_date, first_policy.first_policy_date)') }}
            as spine_start,
        {{ add_days(6, week_start('as_of.as_of_date')) }} as spine_end
    from as_of
    cross join badge_coverage
    cross join first_policy

),

final as (

    select * from bounds

)

select * from final
