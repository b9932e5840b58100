{#
    One row per employee and available day inside the covered weeks.

    A day is available when it is a working day (Monday to Friday, not a
    public holiday in the employee's country), the employee is employed
    (hire_date <= day < termination_date, or no termination) and not on
    approved leave. Employees only: contractors are out of scope.

    Size: employees x working days of their employment within coverage; the
    employment condition is the only non-equi join (a range join).
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

employees as (

    select * from {{ ref('stg_hr__employees') }}

),

calendar_days as (

    select * from {{ ref('int_calendar_days') }}

),

holidays as (

    select * from {{ ref('stg_hr__holidays') }}

),

leaves as (

    select * from {{ ref('stg_hr__leaves') }}

),

job_versions as (

    select * from {{ ref('int_job_history_versioned') }}

),

in_scope_employees as (

    select
        employee_id,
        country,
        hire_date,
        termination_date
    from employees
    where worker_type = 'employee'
        and hire_date is not null

),

covered_weekdays as (

    select * from calendar_days
    where is_covered
        and is_weekday

),

holiday_dates as (

    select distinct
        country,
        holiday_date
    from holidays

),

leave_days as (

    select distinct
        leaves.employee_id,
        covered_weekdays.date_day
    from leaves
    inner join covered_weekdays
        on (leaves.start_date is null or leaves.start_date <= covered_weekdays.date_day)
        and (leaves.end_date is null or covered_weekdays.date_day <= leaves.end_date)
    where leaves.employee_id is not null

),

employed_weekdays as (

    {#- employees x covered weekdays of their employment (a range join) #}
    {%- set employed_weekdays_of %}
    select
        in_scope_employees.employee_id,
        in_scope_employees.country,
        covered_weekdays.date_day,
        covered_weekdays.week_start,
        covered_weekdays.policy_id,
        covered_weekdays.policy_kind,
        covered_weekdays.policy_required_days,
        covered_weekdays.min_presence_minutes
    from {people} as in_scope_employees
    inner join {days} as covered_weekdays
        on in_scope_employees.hire_date <= covered_weekdays.date_day
        and (
            in_scope_employees.termination_date is null
            or covered_weekdays.date_day < in_scope_employees.termination_date
        )
    {%- endset %}
    {{ join_within_rebuild_scope(
        employed_weekdays_of,
        days='covered_weekdays', date_column='date_day',
        people='in_scope_employees', employee_column='employee_id',
    ) }}

),

available_days as (

    select employed_weekdays.*
    from employed_weekdays
    left join holiday_dates
        on employed_weekdays.country = holiday_dates.country
        and employed_weekdays.date_day = holiday_dates.holiday_date
    left join leave_days
        on employed_weekdays.employee_id = leave_days.employee_id
        and employed_weekdays.date_day = leave_days.date_day
    where holiday_dates.holiday_date is null
        and leave_days.date_day is null

),

final as (

    select
        available_days.employee_id,
        available_days.date_day,
        available_days.week_start,
        available_days.country,
        job_versions.org_unit_id,
        job_versions.job_level,
        available_days.policy_id,
        available_days.policy_kind,
        available_days.policy_required_days,
        available_days.min_presence_minutes
    from available_days
    left join job_versions
        on available_days.employee_id = job_versions.employee_id
        and job_versions.valid_from <= available_days.date_day
        and (job_versions.valid_to is null or available_days.date_day < job_versions.valid_to)

)

select * from final
