{#
    One row per exit: an employee (worker_type employee) with a termination
    date on or before the as-of date; exit_date = termination_date.

    - exit_type: layoff when the employee has a RIF notice with status
      separated (wins over the HR termination reason), else voluntary for
      voluntary_resignation and retirement, else involuntary. A rescinded or
      merely notified notice does not make a layoff. Several separated
      notices: the newest notified_on, then the greatest notice_id.
    - notice_date: the notice's notified_on for layoffs, else exit_date.
    - org_unit_id, job_level: as of the last employed day (exit_date - 1).
    - policy_id: company policy in force on notice_date.
    - weeks_required / weeks_compliant / compliance_rate_13w: the 13 complete
      ISO weeks before the ISO week of notice_date.
#}

with

employees as (

    select * from {{ ref('stg_hr__employees') }}

),

rif_notices as (

    select * from {{ ref('stg_layoffs__rif_notices') }}

),

bounds as (

    select * from {{ ref('int_calendar_bounds') }}

),

job_versions as (

    select * from {{ ref('int_job_history_versioned') }}

),

rto_policies as (

    select * from {{ ref('rto_policies') }}

),

employee_weeks as (

    select * from {{ ref('int_employee_weeks_aggregated') }}

),

terminations as (

    select
        employees.employee_id,
        employees.termination_date as exit_date,
        employees.termination_reason
    from employees
    cross join bounds
    where employees.worker_type = 'employee'
        and employees.termination_date is not null
        and employees.termination_date <= bounds.as_of_date

),

separated_notices as (

    select
        rif_notices.employee_id,
        rif_notices.notice_id,
        rif_notices.rif_round_id,
        rif_notices.notified_on,
        row_number() over (
            partition by rif_notices.employee_id
            order by
                rif_notices.notified_on desc nulls last,
                {{ code_point_order('rif_notices.notice_id') }} desc nulls last
        ) as notice_rank
    from rif_notices
    where rif_notices.status = 'separated'
        and rif_notices.employee_id is not null

),

classified as (

    select
        terminations.employee_id,
        terminations.exit_date,
        terminations.termination_reason,
        case
            when separated_notices.notice_id is not null then 'layoff'
            when terminations.termination_reason in ('voluntary_resignation', 'retirement')
                then 'voluntary'
            else 'involuntary'
        end as exit_type,
        separated_notices.notice_id,
        separated_notices.rif_round_id,
        case
            when separated_notices.notice_id is not null then separated_notices.notified_on
            else terminations.exit_date
        end as notice_date
    from terminations
    left join separated_notices
        on terminations.employee_id = separated_notices.employee_id
        and separated_notices.notice_rank = 1

),

with_context as (

    select
        classified.*,
        {{ add_days(-1, 'classified.exit_date') }} as last_employed_day,
        {{ lookback_start('classified.notice_date', var('compliance_lookback_weeks')) }} as lookback_start,
        {{ lookback_end('classified.notice_date') }} as lookback_end,
        rto_policies.policy_id
    from classified
    left join rto_policies
        on rto_policies.effective_from <= classified.notice_date
        and (rto_policies.effective_to is null or classified.notice_date < rto_policies.effective_to)

),

lookback_stats as (

    select
        with_context.employee_id,
        sum(case when employee_weeks.status <> 'no_requirement' then 1 else 0 end) as weeks_required,
        sum(case when employee_weeks.status = 'compliant' then 1 else 0 end) as weeks_compliant
    from with_context
    inner join employee_weeks
        on with_context.employee_id = employee_weeks.employee_id
        and employee_weeks.week_start >= with_context.lookback_start
        and employee_weeks.week_start <= with_context.lookback_end
    group by with_context.employee_id

),

final as (

    select
        with_context.employee_id,
        with_context.exit_date,
        with_context.exit_type,
        with_context.termination_reason,
        with_context.rif_round_id,
        with_context.notice_id,
        with_context.notice_date,
        with_context.lookback_start,
        with_context.lookback_end,
        cast(coalesce(lookback_stats.weeks_required, 0) as integer) as weeks_required,
        cast(coalesce(lookback_stats.weeks_compliant, 0) as integer) as weeks_compliant,
        {{ compliance_rate('lookback_stats.weeks_compliant', 'lookback_stats.weeks_required') }}
            as compliance_rate_13w,
        with_context.policy_id,
        job_versions.org_unit_id,
        job_versions.job_level
    from with_context
    left join lookback_stats
        on with_context.employee_id = lookback_stats.employee_id
    left join job_versions
        on with_context.employee_id = job_versions.employee_id
        and job_versions.valid_from <= with_context.last_employed_day
        and (
            job_versions.valid_to is null
            or with_context.last_employed_day < job_versions.valid_to
        )

)

select * from final
