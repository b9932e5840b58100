{#
    One row per employee and covered ISO week: the week's figures from its
    available days.
    - available_days: number of available days;
    - required_days = (sum of day_requirement + 4) // 5 (macro required_days,
      integer arithmetic on every engine);
    - office_days: office days among the available days;
    - has_exception: at least one available day took its requirement from an
      employee or an org-unit exception;
    - status: no_requirement when required_days = 0, compliant when
      office_days >= required_days, non_compliant otherwise.
#}

{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ rebuild_scope_delete() }}",
    meta={'rebuild_scope': {'employee': 'employee_id', 'week': 'week_start'}},
) }}

-- depends_on: {{ ref('int_rebuild_scope') }}


with

employee_weeks as (

    select * from {{ ref('int_employee_weeks') }}
    {% if is_incremental() %}
    where {{ in_rebuild_scope('employee_id', week_column='week_start') }}
    {% endif %}

),

employee_days as (

    select * from {{ ref('int_employee_days_required') }}
    {% if is_incremental() %}
    where {{ in_rebuild_scope('employee_id', week_column='week_start') }}
    {% endif %}

),

daily_totals as (

    select
        employee_id,
        week_start,
        count(*) as available_days,
        sum(day_requirement) as requirement_sum,
        sum(case when is_office_day then 1 else 0 end) as office_days,
        max(
            case
                when requirement_source in ('employee_exception', 'org_unit_exception') then 1
                else 0
            end
        ) as exception_days_flag
    from employee_days
    group by
        employee_id,
        week_start

),

weekly as (

    select
        employee_weeks.employee_id,
        employee_weeks.week_start,
        employee_weeks.org_unit_id,
        employee_weeks.policy_id,
        cast(coalesce(daily_totals.available_days, 0) as integer) as available_days,
        cast(coalesce(daily_totals.requirement_sum, 0) as integer) as requirement_sum,
        {{ required_days('coalesce(daily_totals.requirement_sum, 0)') }} as required_days,
        cast(coalesce(daily_totals.office_days, 0) as integer) as office_days,
        coalesce(daily_totals.exception_days_flag, 0) = 1 as has_exception
    from employee_weeks
    left join daily_totals
        on employee_weeks.employee_id = daily_totals.employee_id
        and employee_weeks.week_start = daily_totals.week_start

),

final as (

    select
        employee_id,
        week_start,
        org_unit_id,
        policy_id,
        available_days,
        requirement_sum,
        required_days,
        office_days,
        case
            when required_days = 0 then 'no_requirement'
            when office_days >= required_days then 'compliant'
            else 'non_compliant'
        end as status,
        has_exception
    from weekly

)

select * from final
