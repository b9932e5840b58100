{#
    One row per employee (worker_type employee) and covered month in which
    the employee was employed on at least one day.

    Covered months: complete calendar months with month_start >=
    coverage_start and month end <= as_of_date.

    - compliance_band: the band at the month start, from the 13 complete ISO
      weeks before the ISO week containing month_start: high (rate >= 0.90),
      medium (>= 0.50), low (< 0.50), no_requirement (rate null); always
      no_requirement for an employee not employed at the month start.
    - department_id_at_start / _at_hire / _at_end: the department (nearest
      department org unit) of the employee's org unit on the month start, the
      hire date and the month's last day.

    Incremental (DESIGN.md "Incremental builds"): a month's row depends on the
    employee's HR rows and on the weeks from its lookback start to its last
    day, so a night rebuilds the months of the employees in scope and every
    month whose window holds a day in scope (macro month_in_rebuild_scope).
    A scope that holds most months rebuilds the table whole (macro
    months_rebuilt_whole). The window's weeks are read from
    int_employee_weeks_aggregated, which keeps the weeks before the retention
    floor: no floor applies here, as in a rebuild of the whole table.
#}

{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ rebuild_scope_delete_months('employee_id', 'month_start') }}",
) }}

-- depends_on: {{ ref('int_rebuild_scope') }}

with

employees as (

    select * from {{ ref('stg_hr__employees') }}

),

months as (

    select * from {{ ref('int_calendar_months') }}

),

job_versions as (

    select * from {{ ref('int_job_history_versioned') }}

),

org_units as (

    select * from {{ ref('int_org_units_enriched') }}

),

employee_weeks as (

    select * from {{ ref('int_employee_weeks_aggregated') }}

),

employee_months as (

    select
        employees.employee_id,
        months.month_start,
        months.month_end,
        employees.hire_date,
        employees.hire_date <= months.month_start
            and (employees.termination_date is null or months.month_start < employees.termination_date)
            as is_employed_at_start,
        employees.hire_date >= months.month_start
            and employees.hire_date <= months.month_end
            as is_hired_in_month,
        employees.hire_date <= months.month_end
            and (employees.termination_date is null or months.month_end < employees.termination_date)
            as is_employed_at_end
    from employees
    inner join months
        on employees.hire_date <= months.month_end
        and (employees.termination_date is null or employees.termination_date > months.month_start)
    where employees.worker_type = 'employee'
    {% if is_incremental() and not months_rebuilt_whole() %}
        and (
            {{ month_in_rebuild_scope('months.month_start') }}
            or {{ employee_in_rebuild_scope('employees.employee_id') }}
        )
    {% endif %}

),

lookback_stats as (

    select
        employee_months.employee_id,
        employee_months.month_start,
        sum(case when employee_weeks.status <> 'no_requirement' then 1 else 0 end) as weeks_required,
        sum(case when employee_weeks.status = 'compliant' then 1 else 0 end) as weeks_compliant
    from employee_months
    inner join employee_weeks
        on employee_months.employee_id = employee_weeks.employee_id
        and employee_weeks.week_start
            >= {{ lookback_start('employee_months.month_start', var('compliance_lookback_weeks')) }}
        and employee_weeks.week_start <= {{ lookback_end('employee_months.month_start') }}
    where employee_months.is_employed_at_start
    group by
        employee_months.employee_id,
        employee_months.month_start

),

with_departments as (

    select
        employee_months.*,
        start_units.department_id as department_id_at_start,
        hire_units.department_id as department_id_at_hire,
        end_units.department_id as department_id_at_end
    from employee_months
    left join job_versions as start_versions
        on employee_months.employee_id = start_versions.employee_id
        and start_versions.valid_from <= employee_months.month_start
        and (start_versions.valid_to is null or employee_months.month_start < start_versions.valid_to)
    left join org_units as start_units
        on start_versions.org_unit_id = start_units.org_unit_id
    left join job_versions as hire_versions
        on employee_months.employee_id = hire_versions.employee_id
        and hire_versions.valid_from <= employee_months.hire_date
        and (hire_versions.valid_to is null or employee_months.hire_date < hire_versions.valid_to)
    left join org_units as hire_units
        on hire_versions.org_unit_id = hire_units.org_unit_id
    left join job_versions as end_versions
        on employee_months.employee_id = end_versions.employee_id
        and end_versions.valid_from <= employee_months.month_end
        and (end_versions.valid_to is null or employee_months.month_end < end_versions.valid_to)
    left join org_units as end_units
        on end_versions.org_unit_id = end_units.org_unit_id

),

final as (

    select
        with_departments.employee_id,
        with_departments.month_start,
        with_departments.month_end,
        with_departments.is_employed_at_start,
        with_departments.is_hired_in_month,
        with_departments.is_employed_at_end,
        with_departments.department_id_at_start,
        with_departments.department_id_at_hire,
        with_departments.department_id_at_end,
        cast(coalesce(lookback_stats.weeks_required, 0) as integer) as weeks_required,
        cast(coalesce(lookback_stats.weeks_compliant, 0) as integer) as weeks_compliant,
        case
            when with_departments.is_employed_at_start
                then {{ compliance_band('lookback_stats.weeks_compliant', 'lookback_stats.weeks_required') }}
            else 'no_requirement'
        end as compliance_band
    from with_departments
    left join lookback_stats
        on with_departments.employee_id = lookback_stats.employee_id
        and with_departments.month_start = lookback_stats.month_start

)

select * from final
